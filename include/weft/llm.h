// weft's LLM engine from C++: GGUF models of the Llama family, their tokenizer and chat template,
// a batched forward pass over a paged KV cache, sampling and streamed generation. Link weft::llm.
//
//   #include <weft/llm.h>
//
//   auto model = weft::llm::LlamaModel::load("SmolLM2-135M-Instruct.Q4_1.gguf");
//   auto tokenizer = weft::llm::Tokenizer::from_gguf((*model)->file());
//   auto prompt = tokenizer->encode("The capital of France is");
//   auto g = weft::llm::generate(**model, *tokenizer, *prompt, {.max_tokens = 16});
//   std::puts(g->text.c_str());
//
// The engine's headers live beside this one (llm/, kernels/) and include each other by module
// path; weft::llm puts them on the include path.
#pragma once

#include "llm/chat_template.h"
#include "llm/generator.h"
#include "llm/gguf_file.h"
#include "llm/kv_cache.h"
#include "llm/llama_model.h"
#include "llm/lora_adapter.h"
#include "llm/sampler.h"
#include "llm/tokenizer.h"
#include "weft/version.h"
