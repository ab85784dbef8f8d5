#include "resource_gate.h"

#include <gtest/gtest.h>

namespace weft::sched {
namespace {

struct Dummy final : detail::Runnable {
  explicit Dummy(Slo s = Slo::kStandard) { set_priority(s, detail::kNoDeadline); }
  void run() override {}
  void cancel() override {}
};

TEST(ResourceGate, AdmitsParksAndReleasesMostUrgentFirst) {
  ResourceGate gate({{"CPU", 2}, {"GPU", 1}});
  ResourceSet gpu{{"GPU", 1}};
  Dummy a, b(Slo::kBatch), c(Slo::kLatencyCritical);
  std::string why;
  EXPECT_EQ(gate.acquire(&a, gpu, &why), ResourceGate::Outcome::kNow);
  EXPECT_EQ(gate.acquire(&b, gpu, &why), ResourceGate::Outcome::kParked);
  EXPECT_EQ(gate.acquire(&c, gpu, &why), ResourceGate::Outcome::kParked);
  auto admitted = gate.release(gpu);
  ASSERT_EQ(admitted.size(), 1u);
  EXPECT_EQ(admitted[0], &c);  // latency-critical before batch
  admitted = gate.release(gpu);
  ASSERT_EQ(admitted.size(), 1u);
  EXPECT_EQ(admitted[0], &b);
  EXPECT_TRUE(gate.release(gpu).empty());
  EXPECT_DOUBLE_EQ(gate.available().at("GPU"), 1.0);
}

TEST(ResourceGate, InfeasibleNeedsSayWhatTheNodeHas) {
  ResourceGate gate({{"CPU", 2}});
  Dummy a;
  std::string why;
  EXPECT_EQ(gate.acquire(&a, {{"GPU", 1}}, &why), ResourceGate::Outcome::kInfeasible);
  EXPECT_NE(why.find("GPU: 1"), std::string::npos);
  EXPECT_NE(why.find("CPU: 2"), std::string::npos);
  EXPECT_EQ(gate.acquire(&a, {{"CPU", -1}}, &why), ResourceGate::Outcome::kInfeasible);
  EXPECT_NE(why.find("negative"), std::string::npos);
}

}  // namespace
}  // namespace weft::sched
