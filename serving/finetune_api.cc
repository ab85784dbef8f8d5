#include "serving/finetune_api.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace weft::serving {
namespace {

using nlohmann::json;

// Text from clients (file names) may be any bytes: invalid UTF-8 is replaced, never thrown on.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

ApiError bad(std::string param, std::string message) {
  return {400, std::move(message), "invalid_request_error", std::move(param), ""};
}

// The value of `key` in a header's parameters (name="file"; filename="a.jsonl"), or empty.
std::string header_param(std::string_view header, std::string_view key) {
  for (size_t at = 0; (at = header.find(key, at)) != std::string_view::npos; at += key.size()) {
    if (at > 0 && header[at - 1] != ' ' && header[at - 1] != ';') continue;
    size_t v = at + key.size();
    if (v >= header.size() || header[v] != '=') continue;
    ++v;
    if (v < header.size() && header[v] == '"') {
      const size_t end = header.find('"', v + 1);
      return std::string(header.substr(v + 1, end == std::string_view::npos ? std::string_view::npos : end - v - 1));
    }
    const size_t end = header.find(';', v);
    std::string_view value = header.substr(v, end == std::string_view::npos ? std::string_view::npos : end - v);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\r')) value.remove_suffix(1);
    return std::string(value);
  }
  return "";
}

const char* status_name(JobStatus s) {
  switch (s) {
    case JobStatus::kQueued:
      return "queued";
    case JobStatus::kRunning:
      return "running";
    case JobStatus::kSucceeded:
      return "succeeded";
    case JobStatus::kFailed:
      return "failed";
    case JobStatus::kCancelled:
      return "cancelled";
  }
  return "failed";
}

json file_object(const TrainingFile& f) {
  return {{"object", "file"},       {"id", f.id},           {"bytes", f.bytes},     {"created_at", f.created_at},
          {"filename", f.filename}, {"purpose", f.purpose}, {"status", "processed"}};
}

}  // namespace

std::variant<FileUpload, ApiError> parse_file_upload(std::string_view body, std::string_view content_type) {
  if (content_type.rfind("multipart/form-data", 0) != 0) {
    return bad("", "upload the file as multipart/form-data with fields 'file' and 'purpose'");
  }
  const std::string boundary = header_param(content_type, "boundary");
  if (boundary.empty()) return bad("", "the multipart Content-Type has no boundary");
  const std::string delimiter = "--" + boundary;
  FileUpload up;
  bool have_file = false;
  size_t at = body.find(delimiter);
  while (at != std::string_view::npos) {
    at += delimiter.size();
    if (body.substr(at, 2) == "--") break;  // the closing delimiter
    if (body.substr(at, 2) != "\r\n") return bad("", "malformed multipart body");
    at += 2;
    const size_t headers_end = body.find("\r\n\r\n", at);
    if (headers_end == std::string_view::npos) return bad("", "malformed multipart body");
    const std::string_view headers = body.substr(at, headers_end - at);
    const size_t content = headers_end + 4;
    const size_t next = body.find("\r\n" + delimiter, content);
    if (next == std::string_view::npos) return bad("", "the multipart body is not closed");
    std::string disposition;
    for (size_t h = 0; h < headers.size();) {
      size_t e = headers.find("\r\n", h);
      if (e == std::string_view::npos) e = headers.size();
      const std::string_view line = headers.substr(h, e - h);
      if (line.size() > 20 &&
          (line.substr(0, 20) == "Content-Disposition:" || line.substr(0, 20) == "content-disposition:")) {
        disposition = std::string(line.substr(20));
      }
      h = e + 2;
    }
    const std::string name = header_param(disposition, "name");
    const std::string_view value = body.substr(content, next - content);
    if (name == "file") {
      up.filename = header_param(disposition, "filename");
      up.content = std::string(value);
      have_file = true;
    } else if (name == "purpose") {
      up.purpose = std::string(value);
    }
    at = next + 2;
  }
  if (!have_file) return bad("file", "the upload has no 'file' field");
  if (up.purpose.empty()) return bad("purpose", "the upload has no 'purpose' field");
  return up;
}

std::variant<JobRequest, ApiError> parse_job_request(std::string_view body) {
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("", "the body must be a JSON object");
  JobRequest r;
  try {
    auto str = [&](const char* key, std::string& out) -> std::optional<ApiError> {
      auto it = j.find(key);
      if (it == j.end() || it->is_null()) return std::nullopt;
      if (!it->is_string()) return bad(key, fmt::format("'{}' must be a string", key));
      out = it->get<std::string>();
      return std::nullopt;
    };
    if (auto e = str("training_file", r.training_file)) return *e;
    if (r.training_file.empty()) return bad("training_file", "'training_file' (a file id) is required");
    if (auto e = str("model", r.model)) return *e;
    if (auto e = str("suffix", r.suffix)) return *e;
    if (j.contains("validation_file") && !j["validation_file"].is_null()) {
      return bad("validation_file", "validation files are not supported");
    }
    if (j.contains("seed") && !j["seed"].is_null()) {
      if (!j["seed"].is_number_integer()) return bad("seed", "'seed' must be an integer");
      r.seed = static_cast<uint64_t>(j["seed"].get<int64_t>());
    }
    json hp = j.value("hyperparameters", json::object());
    if (j.contains("method") && j["method"].is_object()) {
      const json& m = j["method"];
      const std::string type = m.value("type", "supervised");
      if (type != "supervised") return bad("method", fmt::format("method '{}' is not supported; use supervised", type));
      if (m.contains("supervised") && m["supervised"].is_object()) {
        hp = m["supervised"].value("hyperparameters", hp);
      }
    }
    if (!hp.is_object()) return bad("hyperparameters", "'hyperparameters' must be an object");
    auto integer = [&](const char* key, int& out, int lo, int hi) -> std::optional<ApiError> {
      auto it = hp.find(key);
      if (it == hp.end() || it->is_null() || (it->is_string() && *it == "auto")) return std::nullopt;
      if (!it->is_number_integer() || it->get<int64_t>() < lo || it->get<int64_t>() > hi) {
        return bad(std::string("hyperparameters.") + key,
                   fmt::format("'{}' must be an integer in {}..{}", key, lo, hi));
      }
      out = it->get<int>();
      return std::nullopt;
    };
    auto number = [&](const char* key, float& out, double lo, double hi) -> std::optional<ApiError> {
      auto it = hp.find(key);
      if (it == hp.end() || it->is_null() || (it->is_string() && *it == "auto")) return std::nullopt;
      if (!it->is_number() || !(it->get<double>() >= lo) || !(it->get<double>() <= hi)) {
        return bad(std::string("hyperparameters.") + key,
                   fmt::format("'{}' must be a number in [{}, {}]", key, lo, hi));
      }
      out = it->get<float>();
      return std::nullopt;
    };
    if (auto e = integer("n_epochs", r.epochs, 1, 1000)) return *e;
    if (auto e = integer("batch_size", r.batch_size, 1, 4096)) return *e;
    float multiplier = 1;
    if (auto e = number("learning_rate_multiplier", multiplier, 1e-6, 1e4)) return *e;
    r.learning_rate *= multiplier;
    if (auto e = number("learning_rate", r.learning_rate, 1e-9, 1)) return *e;
    if (auto e = integer("lora_rank", r.rank, 1, 1024)) return *e;
    if (auto e = number("lora_alpha", r.alpha, 1e-6, 1e6)) return *e;
    if (auto e = number("momentum", r.momentum, 0, 1)) return *e;
    if (auto e = number("weight_decay", r.weight_decay, 0, 1e3)) return *e;
    if (auto e = number("max_grad_norm", r.max_grad_norm, 0, 1e9)) return *e;
    if (hp.contains("use_rslora")) {
      if (!hp["use_rslora"].is_boolean()) return bad("hyperparameters.use_rslora", "'use_rslora' must be a boolean");
      r.rslora = hp["use_rslora"].get<bool>();
    }
    if (hp.contains("optimizer")) {
      const json& o = hp["optimizer"];
      if (!o.is_string() || (o != "adamw" && o != "sgd")) {
        return bad("hyperparameters.optimizer", "'optimizer' is adamw or sgd");
      }
      r.optimizer = o == "adamw" ? 0 : 1;
    }
    if (hp.contains("lora_target_modules")) {
      const json& t = hp["lora_target_modules"];
      r.targets.clear();
      if (t.is_string() && t == "all") {
        for (int k = 0; k < llm::kLoraTargets; ++k) r.targets.push_back(static_cast<llm::LoraTarget>(k));
      } else if (t.is_array() && !t.empty()) {
        for (const json& m : t) {
          Result<llm::LoraTarget> target = m.is_string()
                                               ? llm::parse_lora_target(m.get<std::string>())
                                               : Result<llm::LoraTarget>(Status::invalid_argument("not a name"));
          if (!target.ok()) return bad("hyperparameters.lora_target_modules", target.status().message());
          r.targets.push_back(*target);
        }
      } else {
        return bad("hyperparameters.lora_target_modules", "'lora_target_modules' is a list of module names or \"all\"");
      }
    }
  } catch (const json::exception& e) {
    return bad("", fmt::format("the request cannot be read: {}", e.what()));
  }
  return r;
}

std::string file_json(const TrainingFile& f) { return dump(file_object(f)); }

std::string files_body(const std::vector<TrainingFile>& files) {
  json data = json::array();
  for (const TrainingFile& f : files) data.push_back(file_object(f));
  return dump(json{{"object", "list"}, {"data", data}, {"has_more", false}});
}

std::string file_deleted_body(const std::string& id) {
  return dump(json{{"id", id}, {"object", "file"}, {"deleted", true}});
}

namespace {

json job_object(const JobRecord& j, const std::string& base) {
  const JobRequest& r = j.request;
  json targets = json::array();
  for (llm::LoraTarget t : r.targets) targets.push_back(std::string(llm::lora_target_name(t)));
  const json hp = {{"n_epochs", r.epochs},
                   {"batch_size", r.batch_size},
                   {"learning_rate_multiplier", r.learning_rate / 2e-4},
                   {"learning_rate", r.learning_rate},
                   {"lora_rank", r.rank},
                   {"lora_alpha", r.alpha},
                   {"lora_target_modules", targets},
                   {"use_rslora", r.rslora},
                   {"optimizer", r.optimizer == 0 ? "adamw" : "sgd"},
                   {"momentum", r.momentum},
                   {"weight_decay", r.weight_decay},
                   {"max_grad_norm", r.max_grad_norm}};
  json o = {{"object", "fine_tuning.job"},
            {"id", j.id},
            {"model", r.model.empty() ? base : r.model},
            {"created_at", j.created_at},
            {"finished_at", j.finished_at > 0 ? json(j.finished_at) : json(nullptr)},
            {"fine_tuned_model", j.status == JobStatus::kSucceeded ? json(j.fine_tuned_model) : json(nullptr)},
            {"organization_id", "weft"},
            {"result_files", json::array()},
            {"status", status_name(j.status)},
            {"validation_file", nullptr},
            {"training_file", r.training_file},
            {"hyperparameters", hp},
            {"method", {{"type", "supervised"}, {"supervised", {{"hyperparameters", hp}}}}},
            {"trained_tokens", j.status == JobStatus::kSucceeded ? json(j.trained_tokens) : json(nullptr)},
            {"error", j.status == JobStatus::kFailed
                          ? json{{"code", "training_failed"}, {"message", j.error}, {"param", nullptr}}
                          : json(nullptr)},
            {"seed", r.seed},
            {"user_provided_suffix", r.suffix.empty() ? json(nullptr) : json(r.suffix)},
            {"estimated_finish", nullptr},
            {"integrations", json::array()},
            {"step", j.step},
            {"total_steps", j.total_steps}};
  return o;
}

}  // namespace

std::string job_json(const JobRecord& j, const std::string& base) { return dump(job_object(j, base)); }

std::string jobs_body(const std::vector<JobRecord>& jobs, const std::string& base) {
  json data = json::array();
  for (auto it = jobs.rbegin(); it != jobs.rend(); ++it) data.push_back(job_object(*it, base));  // newest first
  return dump(json{{"object", "list"}, {"data", data}, {"has_more", false}});
}

std::string events_body(const JobRecord& j) {
  json data = json::array();
  for (size_t k = j.events.size(); k-- > 0;) {
    const JobEvent& e = j.events[k];
    json ev = {{"object", "fine_tuning.job.event"},
               {"id", fmt::format("ftevent-{}-{}", j.id.substr(6), k)},
               {"created_at", e.created_at},
               {"level", "info"},
               {"message", e.message},
               {"type", e.metrics ? "metrics" : "message"}};
    if (e.metrics) {
      ev["data"] = {{"step", e.step}, {"total_steps", e.total_steps}, {"train_loss", e.loss}};
    } else {
      ev["data"] = json::object();
    }
    data.push_back(ev);
  }
  return dump(json{{"object", "list"}, {"data", data}, {"has_more", false}});
}

}  // namespace weft::serving
