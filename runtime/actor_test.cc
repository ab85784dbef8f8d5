// Actors: ordering, concurrency, failures, lifetime.
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "runtime/test_util.h"

namespace {
std::atomic<int> g_live_accounts{0};

class Account {
 public:
  explicit Account(long balance) : balance_(balance) { g_live_accounts.fetch_add(1); }
  Account(Account&& o) noexcept : balance_(o.balance_), log_(std::move(o.log_)) { g_live_accounts.fetch_add(1); }
  ~Account() { g_live_accounts.fetch_sub(1); }
  long deposit(long amount) {
    // Not thread-safe on purpose: the actor guarantees one call at a time.
    long b = balance_;
    std::this_thread::yield();
    balance_ = b + amount;
    log_.push_back(amount);
    return balance_;
  }
  long withdraw(long amount) {
    if (amount > balance_) throw std::runtime_error("insufficient funds");
    return balance_ -= amount;
  }
  std::vector<long> history() const { return log_; }
  long balance() const { return balance_; }
  long unregistered_peek() const { return balance_; }

 private:
  long balance_;
  std::vector<long> log_;
};

Account open_account(long start) { return Account(start); }
std::unique_ptr<Account> open_account_ptr(long start) { return std::make_unique<Account>(start); }
Account open_broken(long) { throw std::runtime_error("bank is closed"); }
long slow_amount(long x) {
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  return x;
}
long deposit_from_task(weft::ActorHandle<Account> acct, long n) {
  return weft::get(acct.task(&Account::deposit).remote(n));
}
long deposit_to_named(long n) { return weft::get(weft::get_actor<Account>("bank").task(&Account::deposit).remote(n)); }
}  // namespace
WEFT_REMOTE(open_account, open_account_ptr, open_broken, slow_amount, deposit_from_task, &Account::deposit,
            &Account::withdraw, &Account::history, &Account::balance, deposit_to_named);

namespace weft {
namespace {

using ActorTest = testing::RuntimeTest<2>;

TEST_F(ActorTest, CallsRunInSubmissionOrder) {
  auto acct = actor<Account>(open_account).remote(0);
  std::vector<ObjectRef<long>> refs;
  for (long i = 1; i <= 500; ++i) refs.push_back(acct.task(&Account::deposit).remote(i));
  std::vector<long> balances = get(refs);
  long expect = 0;
  for (long i = 1; i <= 500; ++i) {
    expect += i;
    ASSERT_EQ(balances[i - 1], expect);
  }
}

TEST_F(ActorTest, LaterCallWaitsForEarlierCallsDependencies) {
  auto acct = actor<Account>(open_account_ptr).remote(0);
  auto first = acct.task(&Account::deposit).remote(task(slow_amount).remote(1L));  // ready later
  auto second = acct.task(&Account::deposit).remote(2L);                            // ready now
  EXPECT_EQ(get(second), 3);
  EXPECT_EQ(get(first), 1);
  EXPECT_EQ(get(acct.task(&Account::history).remote()), (std::vector<long>{1, 2}));
}

TEST_F(ActorTest, ConcurrentCallersLoseNoUpdates) {
  auto acct = actor<Account>(open_account).remote(0);
  std::vector<ObjectRef<long>> tasks;
  for (int i = 0; i < 200; ++i) tasks.push_back(task(deposit_from_task).remote(acct, 1L));
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([acct] {
      for (int i = 0; i < 100; ++i) acct.task(&Account::deposit).remote(1L);
    });
  }
  for (auto& th : threads) th.join();
  get(tasks);
  EXPECT_EQ(get(acct.task(&Account::balance).remote()), 500);
}

TEST_F(ActorTest, MethodErrorFailsOnlyThatCall) {
  auto acct = actor<Account>(open_account).remote(10);
  auto bad = acct.task(&Account::withdraw).remote(100L);
  auto good = acct.task(&Account::withdraw).remote(4L);
  try {
    get(bad);
    FAIL();
  } catch (const TaskError& e) {
    EXPECT_EQ(e.task_name(), "Account::withdraw");
    EXPECT_EQ(e.message(), "insufficient funds");
  }
  EXPECT_EQ(get(good), 6);
}

TEST_F(ActorTest, FailedConstructionFailsEveryCall) {
  auto acct = actor<Account>(open_broken).remote(1);
  for (int i = 0; i < 3; ++i) {
    try {
      get(acct.task(&Account::balance).remote());
      FAIL();
    } catch (const TaskError& e) {
      EXPECT_EQ(e.task_name(), "open_broken");
      EXPECT_EQ(e.message(), "bank is closed");
    }
  }
}

TEST_F(ActorTest, ActorIsDestroyedAfterLastHandleAndCall) {
  int before = g_live_accounts.load();
  ObjectRef<long> last;
  {
    auto acct = actor<Account>(open_account).remote(5);
    last = acct.task(&Account::deposit).remote(1L);
  }
  EXPECT_EQ(get(last), 6);
  for (int i = 0; i < 1000 && g_live_accounts.load() != before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(g_live_accounts.load(), before);
}

TEST_F(ActorTest, UnregisteredMethodIsAnError) {
  auto acct = actor<Account>(open_account).remote(5);
  try {
    acct.task(&Account::unregistered_peek);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not registered"), std::string::npos);
  }
  ActorHandle<Account> empty;
  EXPECT_THROW(empty.task(&Account::balance), Error);
}

}  // namespace
}  // namespace weft

namespace weft {
namespace {

using NamedActorTest = testing::RuntimeTest<2>;

TEST_F(NamedActorTest, ANamedActorIsFoundByNameAndOutlivesItsHandles) {
  const int live_before = g_live_accounts.load();
  actor<Account>(open_account).name("bank").remote(10);  // the handle is dropped at once
  EXPECT_EQ(get(get_actor<Account>("bank").task(&Account::deposit).remote(5)), 15);
  EXPECT_EQ(get(task(deposit_to_named).remote(1)), 16);  // from inside a task too
  EXPECT_EQ(g_live_accounts.load(), live_before + 1);
  ASSERT_TRUE(shutdown().is_ok());  // the runtime's end is the named actor's
  EXPECT_EQ(g_live_accounts.load(), live_before);
}

TEST_F(NamedActorTest, NamesAreUniqueAndLookupsAreTyped) {
  auto a = actor<Account>(open_account).name("only").remote(1);
  try {
    actor<Account>(open_account).name("only").remote(2);
    FAIL() << "expected weft::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("an actor named 'only' already exists"), std::string::npos) << e.what();
  }
  try {
    get_actor<Account>("nobody");
    FAIL() << "expected weft::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no actor is named 'nobody'"), std::string::npos) << e.what();
  }
  try {
    get_actor<std::string>("only");
    FAIL() << "expected weft::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is a "), std::string::npos) << e.what();
  }
  // Errors of a named actor's calls carry its name.
  auto broken = actor<Account>(open_broken).name("closed-bank").remote(0);
  try {
    get(broken.task(&Account::deposit).remote(1));
    FAIL() << "expected a TaskError";
  } catch (const TaskError& e) {
    EXPECT_EQ(e.task_name(), "closed-bank");
  }
}

}  // namespace
}  // namespace weft
