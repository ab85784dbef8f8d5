// A three-stage pipeline (parse -> score -> report) with SLO classes: background batch jobs fill
// the workers, and latency-critical requests still go first. Each request's stages are chained by
// dataflow: a stage starts as soon as the previous stage's object exists. No global state: it runs
// the same embedded and with its tasks in worker processes (WEFT_PROCESSES=2).
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.h>

std::vector<int> parse(std::string text) {
  std::vector<int> words;
  int len = 0;
  for (char c : text + " ") {
    if (c == ' ') {
      if (len > 0) words.push_back(len);
      len = 0;
    } else {
      ++len;
    }
  }
  return words;
}
double score(const std::vector<int>& lengths) {
  double s = 0;
  for (int l : lengths) s += l;
  return lengths.empty() ? 0.0 : s / static_cast<double>(lengths.size());
}
std::string report(std::string id, double s) { return id + " mean word length " + std::to_string(s).substr(0, 4); }
int batch_job(int) {
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  return 1;
}
WEFT_REMOTE(parse, score, report, batch_job);

weft::ObjectRef<std::string> request(const std::string& id, const std::string& text) {
  auto lc = weft::Slo::kLatencyCritical;
  auto words = weft::task(parse).priority(lc).remote(text);
  auto s = weft::task(score).priority(lc).remote(words);
  return weft::task(report).priority(lc).remote(id, s);
}

int main() {
  if (!weft::init({.num_workers = 2}).is_ok()) return 1;
  std::vector<weft::ObjectRef<int>> batch;
  for (int i = 0; i < 400; ++i) batch.push_back(weft::task(batch_job).priority(weft::Slo::kBatch).remote(i));

  std::vector<weft::ObjectRef<std::string>> reports;
  reports.push_back(request("req-1", "the quick brown fox jumps over the lazy dog"));
  reports.push_back(request("req-2", "work stealing keeps every core busy"));
  for (const auto& r : reports) {
    const std::string& line = weft::get(r);
    int done = 0;  // batch jobs finished by the time this report came back
    for (const auto& b : batch) done += b.is_ready();
    std::printf("%s (batch jobs done before it: %d of %zu)\n", line.c_str(), done, batch.size());
  }

  int done = 0;
  for (int d : weft::get(batch)) done += d;
  std::printf("batch jobs done: %d\n", done);
  return weft::shutdown().is_ok() ? 0 : 1;
}
