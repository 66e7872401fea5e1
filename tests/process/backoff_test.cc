// Tests for process/backoff.h: the manager's respawn decision, driven directly with uptimes.
#include "process/backoff.h"

#include <chrono>
#include <limits>

#include "gtest/gtest.h"
#include "process/process_config.h"

namespace sprocket {
namespace {

using std::chrono::milliseconds;

class BackoffTest : public ::testing::Test {
 protected:
  BackoffTest() {
    policy_.backoff_start = milliseconds(100);
    policy_.backoff_max = milliseconds(30000);
    policy_.stable_after = milliseconds(1000);
    policy_.give_up_after = 0;
  }

  // A death well before stable_after.
  RespawnDecision DieYoung() { return DecideRespawn(policy_, state_, milliseconds(10), false); }

  RestartPolicy policy_;
  BackoffState state_;
};

TEST_F(BackoffTest, DeliberateCleanExitRespawnsAtOnceWithoutCounting) {
  const RespawnDecision d = DecideRespawn(policy_, state_, milliseconds(5), true);
  EXPECT_FALSE(d.give_up);
  EXPECT_EQ(d.delay, milliseconds(0));
  EXPECT_EQ(state_.young_failures, 0);
}

TEST_F(BackoffTest, DeliberateCleanExitKeepsAnExistingCount) {
  DieYoung();
  DieYoung();
  ASSERT_EQ(state_.young_failures, 2);
  const RespawnDecision d = DecideRespawn(policy_, state_, milliseconds(5), true);
  EXPECT_EQ(d.delay, milliseconds(0));
  EXPECT_FALSE(d.give_up);
  EXPECT_EQ(state_.young_failures, 2);
  // The next young failure continues the sequence where it was.
  EXPECT_EQ(DieYoung().delay, milliseconds(400));
}

TEST_F(BackoffTest, DeliberateCleanExitNeverGivesUp) {
  policy_.give_up_after = 1;
  for (int i = 0; i < 10; ++i) {
    const RespawnDecision d = DecideRespawn(policy_, state_, milliseconds(1), true);
    EXPECT_FALSE(d.give_up);
    EXPECT_EQ(d.delay, milliseconds(0));
  }
  EXPECT_EQ(state_.young_failures, 0);
}

TEST_F(BackoffTest, YoungFailuresDoubleFromBackoffStart) {
  const milliseconds expected[] = {milliseconds(100), milliseconds(200),  milliseconds(400),
                                   milliseconds(800), milliseconds(1600), milliseconds(3200)};
  int n = 0;
  for (milliseconds want : expected) {
    const RespawnDecision d = DieYoung();
    ++n;
    EXPECT_FALSE(d.give_up) << "failure " << n;
    EXPECT_EQ(d.delay, want) << "failure " << n;
    EXPECT_EQ(state_.young_failures, n);
  }
}

TEST_F(BackoffTest, DelayCapsAtBackoffMax) {
  policy_.backoff_max = milliseconds(1000);
  EXPECT_EQ(DieYoung().delay, milliseconds(100));
  EXPECT_EQ(DieYoung().delay, milliseconds(200));
  EXPECT_EQ(DieYoung().delay, milliseconds(400));
  EXPECT_EQ(DieYoung().delay, milliseconds(800));
  // 1600 is past the cap.
  EXPECT_EQ(DieYoung().delay, milliseconds(1000));
  EXPECT_EQ(DieYoung().delay, milliseconds(1000));
  EXPECT_EQ(DieYoung().delay, milliseconds(1000));
}

TEST_F(BackoffTest, BackoffMaxNotAPowerOfTwoMultipleIsStillTheCap) {
  policy_.backoff_start = milliseconds(300);
  policy_.backoff_max = milliseconds(1000);
  EXPECT_EQ(DieYoung().delay, milliseconds(300));
  EXPECT_EQ(DieYoung().delay, milliseconds(600));
  EXPECT_EQ(DieYoung().delay, milliseconds(1000));
  EXPECT_EQ(DieYoung().delay, milliseconds(1000));
}

TEST_F(BackoffTest, StableRunResetsCountAndRespawnsAtOnce) {
  DieYoung();
  DieYoung();
  DieYoung();
  ASSERT_EQ(state_.young_failures, 3);
  // Exactly stable_after counts as stable.
  const RespawnDecision d = DecideRespawn(policy_, state_, policy_.stable_after, false);
  EXPECT_FALSE(d.give_up);
  EXPECT_EQ(d.delay, milliseconds(0));
  EXPECT_EQ(state_.young_failures, 0);
  // The next young failure starts from backoff_start again.
  EXPECT_EQ(DieYoung().delay, milliseconds(100));
  EXPECT_EQ(state_.young_failures, 1);
}

TEST_F(BackoffTest, UptimeJustBelowStableAfterIsYoung) {
  const RespawnDecision d =
      DecideRespawn(policy_, state_, policy_.stable_after - milliseconds(1), false);
  EXPECT_EQ(d.delay, milliseconds(100));
  EXPECT_EQ(state_.young_failures, 1);
}

TEST_F(BackoffTest, StableDeliberateExitAlsoResetsCount) {
  DieYoung();
  DieYoung();
  const RespawnDecision d = DecideRespawn(policy_, state_, milliseconds(5000), true);
  EXPECT_EQ(d.delay, milliseconds(0));
  EXPECT_FALSE(d.give_up);
  EXPECT_EQ(state_.young_failures, 0);
}

TEST_F(BackoffTest, GivesUpExactlyAtTheNthConsecutiveYoungFailure) {
  policy_.give_up_after = 3;
  const RespawnDecision first = DieYoung();
  EXPECT_FALSE(first.give_up);
  EXPECT_EQ(first.delay, milliseconds(100));
  const RespawnDecision second = DieYoung();
  EXPECT_FALSE(second.give_up);
  EXPECT_EQ(second.delay, milliseconds(200));
  const RespawnDecision third = DieYoung();
  EXPECT_TRUE(third.give_up);
  EXPECT_EQ(state_.young_failures, 3);
}

TEST_F(BackoffTest, GiveUpAfterOneGivesUpOnTheFirstYoungFailure) {
  policy_.give_up_after = 1;
  EXPECT_TRUE(DieYoung().give_up);
}

TEST_F(BackoffTest, StableRunBetweenFailuresPostponesGivingUp) {
  policy_.give_up_after = 3;
  EXPECT_FALSE(DieYoung().give_up);
  EXPECT_FALSE(DieYoung().give_up);
  // Not consecutive any more: a stable run in between.
  EXPECT_FALSE(DecideRespawn(policy_, state_, milliseconds(60000), false).give_up);
  EXPECT_FALSE(DieYoung().give_up);
  EXPECT_FALSE(DieYoung().give_up);
  EXPECT_TRUE(DieYoung().give_up);
}

TEST_F(BackoffTest, GiveUpAfterZeroNeverGivesUp) {
  policy_.give_up_after = 0;
  for (int i = 1; i <= 1000; ++i) {
    const RespawnDecision d = DieYoung();
    ASSERT_FALSE(d.give_up) << "failure " << i;
    if (i >= 10) {
      // 100 * 2^9 = 51200 > 30000: capped from the 10th failure on.
      ASSERT_EQ(d.delay, policy_.backoff_max) << "failure " << i;
    }
  }
  EXPECT_EQ(state_.young_failures, 1000);
}

TEST_F(BackoffTest, HugeCountDoesNotOverflowTheDelay) {
  state_.young_failures = std::numeric_limits<int>::max() - 1;
  const RespawnDecision d = DieYoung();
  EXPECT_FALSE(d.give_up);
  EXPECT_EQ(d.delay, policy_.backoff_max);
  EXPECT_EQ(state_.young_failures, std::numeric_limits<int>::max());
}

TEST_F(BackoffTest, HugeCountWithHugeCapStaysPositiveAndCapped) {
  // A cap far beyond anything doubling 100 ms reaches in 40 steps: the delay must never wrap
  // negative on the way.
  policy_.backoff_max = milliseconds(std::numeric_limits<milliseconds::rep>::max() / 4);
  state_.young_failures = 1'000'000;
  const RespawnDecision d = DieYoung();
  EXPECT_FALSE(d.give_up);
  EXPECT_GT(d.delay, milliseconds(0));
  EXPECT_LE(d.delay, policy_.backoff_max);
}

TEST_F(BackoffTest, LargestPossibleCapDoesNotOverflowTheDelay) {
  // The config only checks backoff_max >= backoff_start, so any int64 count of ms can arrive.
  policy_.backoff_max = milliseconds::max();
  state_.young_failures = 100;
  const RespawnDecision d = DieYoung();
  EXPECT_FALSE(d.give_up);
  EXPECT_GE(d.delay, milliseconds(100)) << "delay wrapped: " << d.delay.count();
  EXPECT_LE(d.delay, policy_.backoff_max);
}

}  // namespace
}  // namespace sprocket
