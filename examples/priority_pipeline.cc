// A three-stage pipeline (parse -> score -> report) with SLO classes: background batch jobs fill
// the workers, and latency-critical requests still go first. Each request's stages are chained by
// dataflow: a stage starts as soon as the previous stage's object exists.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.h>

std::atomic<int> g_batch_done{0};

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
std::string report(std::string id, double s) {
  // How many batch jobs had finished when this report ran.
  return id + " mean word length " + std::to_string(s).substr(0, 4) + " (batch jobs done before: " +
         std::to_string(g_batch_done.load()) + ")";
}
int batch_job(int i) {
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  g_batch_done.fetch_add(1);
  return i;
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
  for (const auto& r : reports) std::printf("%s\n", weft::get(r).c_str());

  weft::get(batch);
  std::printf("batch jobs done: %d\n", g_batch_done.load());
  return weft::shutdown().is_ok() ? 0 : 1;
}
