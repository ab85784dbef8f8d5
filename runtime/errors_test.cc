// Exceptions in tasks become results; dependents fail with the same cause; retries.
#include <atomic>
#include <stdexcept>
#include <string>

#include "runtime/test_util.h"

namespace {
std::atomic<int> g_attempts{0};
std::atomic<int> g_dependent_ran{0};
int er_fail(int x) {
  if (x < 0) throw std::invalid_argument("negative input " + std::to_string(x));
  return x;
}
int er_dependent(int x) {
  g_dependent_ran.fetch_add(1);
  return x + 1;
}
int er_flaky(int succeed_on) {
  if (g_attempts.fetch_add(1) + 1 < succeed_on) throw std::runtime_error("transient");
  return succeed_on;
}
int er_throws_int() { throw 42; }
struct ParseError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
int er_parse(std::string s) { throw ParseError("bad digit in '" + s + "'"); }
int er_after_parse(int x) { return x; }
int er_nested_get(int x) { return weft::get(weft::task(er_fail).remote(x)) * 2; }
}  // namespace
WEFT_REMOTE(er_fail, er_dependent, er_flaky, er_throws_int, er_nested_get, er_parse, er_after_parse);
WEFT_EXCEPTION(ParseError);

namespace weft {
namespace {

using ErrorsTest = testing::RuntimeTest<2>;

TEST_F(ErrorsTest, ARegisteredExceptionTypeIsRaisedAgainAsItself) {
  auto r = task(er_parse).remote(std::string("x1"));
  auto later = task(er_after_parse).remote(r);  // fails with the same cause, not run
  for (auto* ref : {&r, &later}) {
    try {
      get(*ref);
      FAIL() << "expected ParseError";
    } catch (const ParseError& e) {
      EXPECT_STREQ(e.what(), "bad digit in 'x1'");
      try {
        std::rethrow_if_nested(e);
        FAIL() << "expected the TaskError nested inside";
      } catch (const TaskError& t) {
        EXPECT_EQ(t.task_name(), "er_parse");
        EXPECT_EQ(t.exception_type(), "(anonymous namespace)::ParseError");
      }
    }
  }
  // Caught as a std::exception too, like any other exception.
  EXPECT_THROW(get(r), std::exception);
}

TEST_F(ErrorsTest, ExceptionBecomesTaskErrorWithNameAndMessage) {
  auto r = task(er_fail).remote(-3);
  try {
    get(r);
    FAIL() << "expected TaskError";
  } catch (const TaskError& e) {
    EXPECT_EQ(e.task_name(), "er_fail");
    EXPECT_EQ(e.message(), "negative input -3");
    EXPECT_EQ(e.exception_type(), "std::invalid_argument");
    EXPECT_NE(std::string(e.what()).find("er_fail"), std::string::npos);
  }
}

TEST_F(ErrorsTest, CustomNameAppearsInErrors) {
  try {
    get(task(er_fail).name("validate-input").remote(-1));
    FAIL();
  } catch (const TaskError& e) {
    EXPECT_EQ(e.task_name(), "validate-input");
  }
}

TEST_F(ErrorsTest, DependentsFailWithTheSameCauseWithoutRunning) {
  g_dependent_ran = 0;
  auto bad = task(er_fail).remote(-1);
  auto d1 = task(er_dependent).remote(bad);
  auto d2 = task(er_dependent).remote(d1);
  std::vector<ObjectRef<int>> many{put(1), d2};
  auto d3 = task(er_fail).remote(put(5));  // unaffected
  for (auto* r : {&d1, &d2}) {
    try {
      get(*r);
      FAIL();
    } catch (const TaskError& e) {
      EXPECT_EQ(e.task_name(), "er_fail");
      EXPECT_EQ(e.message(), "negative input -1");
    }
  }
  EXPECT_EQ(g_dependent_ran.load(), 0);
  EXPECT_EQ(get(d3), 5);
  WaitResult<int> w = wait(many, 2);  // failed objects count as ready
  EXPECT_EQ(w.ready.size(), 2u);
}

TEST_F(ErrorsTest, NestedGetOfAFailedTaskKeepsTheOriginalCause) {
  try {
    get(task(er_nested_get).remote(-7));
    FAIL();
  } catch (const TaskError& e) {
    EXPECT_EQ(e.task_name(), "er_fail");
    EXPECT_EQ(e.message(), "negative input -7");
  }
  EXPECT_EQ(get(task(er_nested_get).remote(4)), 8);
}

TEST_F(ErrorsTest, RetriesOnExceptionsWhenAsked) {
  g_attempts = 0;
  EXPECT_EQ(get(task(er_flaky).max_retries(3).retry_exceptions().remote(3)), 3);
  EXPECT_EQ(g_attempts.load(), 3);

  g_attempts = 0;
  EXPECT_THROW(get(task(er_flaky).max_retries(1).retry_exceptions().remote(5)), TaskError);
  EXPECT_EQ(g_attempts.load(), 2);

  g_attempts = 0;  // without retry_exceptions, exceptions are not retried
  EXPECT_THROW(get(task(er_flaky).max_retries(5).remote(2)), TaskError);
  EXPECT_EQ(g_attempts.load(), 1);
}

TEST_F(ErrorsTest, NonStandardExceptionsAreCaught) {
  try {
    get(task(er_throws_int).remote());
    FAIL();
  } catch (const TaskError& e) {
    EXPECT_EQ(e.exception_type(), "int");
  }
}

}  // namespace
}  // namespace weft
