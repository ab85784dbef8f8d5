#include "weft/registry.h"

#include <gtest/gtest.h>

#include <string>

#include "weft/errors.h"

namespace regtest {
int triple(int x) { return 3 * x; }
std::string greet(std::string name, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += "hi " + name + ";";
  return out;
}
struct Acc {
  int total = 0;
  int add(int n) { return total += n; }
};
int never_registered(int x) { return x; }
}  // namespace regtest

WEFT_REMOTE(regtest::triple, regtest::greet, &regtest::Acc::add);

namespace weft {
namespace {

TEST(Registry, FindsByNameWithoutAddresses) {
  const RemoteEntry* e = Registry::global().find_by_name("regtest::triple");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->kind, RemoteKind::kFunction);
  EXPECT_NE(e->defined_at.find("registry_test.cc"), std::string::npos);
  const RemoteEntry* m = Registry::global().find_by_name("regtest::Acc::add");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->kind, RemoteKind::kMethod);
}

TEST(Registry, InvokesByNameOnPackedArguments) {
  const RemoteEntry* e = Registry::global().find_by_name("regtest::greet");
  ASSERT_NE(e, nullptr);
  ASSERT_NE(e->invoker, nullptr);
  Result<std::string> out = e->invoker(nullptr, pack(std::make_tuple(std::string("ann"), 2)));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*unpack<std::string>(*out), "hi ann;hi ann;");

  regtest::Acc acc{10};
  const RemoteEntry* m = Registry::global().find_by_name("regtest::Acc::add");
  Result<std::string> r = m->invoker(&acc, pack(std::make_tuple(5)));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*unpack<int>(*r), 15);
}

TEST(Registry, BadPackedArgumentsAreAnErrorNotACrash) {
  const RemoteEntry* e = Registry::global().find_by_name("regtest::triple");
  Result<std::string> out = e->invoker(nullptr, "\xc1garbage");
  EXPECT_EQ(out.status().code(), StatusCode::kCorruption);
  out = e->invoker(nullptr, pack(std::make_tuple(std::string("x"))));
  EXPECT_EQ(out.status().code(), StatusCode::kCorruption);
}

TEST(Registry, ConflictingNamesAreReported) {
  // A second function under a taken name is refused and recorded; the same one again is fine.
  RemoteEntry dup{"regtest::conflict", RemoteKind::kFunction, detail::pointer_key(&regtest::triple), nullptr, "a.cc:1"};
  EXPECT_TRUE(Registry::global().add(dup));
  EXPECT_TRUE(Registry::global().add(dup));
  RemoteEntry other = dup;
  other.key = detail::pointer_key(&regtest::never_registered);
  other.defined_at = "b.cc:2";
  EXPECT_FALSE(Registry::global().add(other));
  Status s = Registry::global().validate();
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_NE(s.message().find("a.cc:1"), std::string::npos);
  EXPECT_NE(s.message().find("b.cc:2"), std::string::npos);
}

TEST(Registry, UnregisteredLookupNamesTheProblem) {
  try {
    detail::lookup_remote(detail::pointer_key(&regtest::never_registered),
                          reinterpret_cast<const void*>(&regtest::never_registered));
    FAIL() << "expected weft::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not registered"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("WEFT_REMOTE"), std::string::npos);
  }
}

TEST(Registry, NormalizesSpelling) {
  EXPECT_EQ(detail::normalize_remote_name("&Counter::add"), "Counter::add");
  EXPECT_EQ(detail::normalize_remote_name(" ::ns::fn "), "ns::fn");
}

}  // namespace
}  // namespace weft
