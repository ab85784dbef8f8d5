// WEFT_CHECK(cond): an invariant that must never break, checked in every build (release too).
// On failure it prints the condition and its place to stderr and aborts: a broken invariant is a
// bug in weft, not bad input (bad input gets a Status).
#pragma once

#include <cstdio>
#include <cstdlib>

#define WEFT_CHECK(cond)                                                                        \
  do {                                                                                          \
    if (__builtin_expect(!(cond), 0)) {                                                         \
      std::fprintf(stderr, "weft: check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);     \
      std::abort();                                                                             \
    }                                                                                           \
  } while (0)
