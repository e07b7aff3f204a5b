// The replication worker's evaluation thread (include/powersync/pg/evaluation_thread.h): one job at a
// time, off the calling thread, with every signal blocked; a job's exception reaches the waiter.
#include <gtest/gtest.h>

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <stdexcept>
#include <thread>

#include "powersync/error.h"
#include "powersync/pg/evaluation_thread.h"

using powersync::pg::EvaluationThread;

TEST(EvaluationThread, RunsTheJobOnAnotherThreadAndWaitsForIt) {
  EvaluationThread worker;
  std::thread::id ran_on;
  worker.submit([&] { ran_on = std::this_thread::get_id(); });
  EXPECT_TRUE(worker.busy());
  worker.wait();
  EXPECT_FALSE(worker.busy());
  EXPECT_NE(ran_on, std::thread::id());
  EXPECT_NE(ran_on, std::this_thread::get_id());
}

TEST(EvaluationThread, ANewJobStartsOnlyAfterThePreviousOneEnded) {
  EvaluationThread worker;
  bool first_done = false, seen = false;
  worker.submit([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    first_done = true;
  });
  worker.submit([&] { seen = first_done; });
  worker.wait();
  EXPECT_TRUE(seen);
}

TEST(EvaluationThread, AJobsExceptionIsRethrownToTheWaiterOnce) {
  EvaluationThread worker;
  worker.submit([] { throw powersync::Error(powersync::Error::Kind::Internal, "bad row"); });
  try {
    worker.wait();
    FAIL() << "no exception";
  } catch (const powersync::Error& e) {
    EXPECT_STREQ(e.what(), "bad row");
  }
  worker.wait();  // nothing in flight any more
  int n = 0;
  worker.submit([&] { n = 1; });
  worker.wait();
  EXPECT_EQ(n, 1);
}

TEST(EvaluationThread, AbandonWaitsAndDropsTheException) {
  EvaluationThread worker;
  bool ran = false;
  worker.submit([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ran = true;
    throw std::runtime_error("not wanted");
  });
  worker.abandon();
  EXPECT_TRUE(ran);
  EXPECT_FALSE(worker.busy());
}

TEST(EvaluationThread, JobsRunWithEverySignalBlockedAndTheCallersMaskStays) {
  sigset_t before, after;
  pthread_sigmask(SIG_SETMASK, nullptr, &before);
  EvaluationThread worker;
  sigset_t in_job;
  worker.submit([&] { pthread_sigmask(SIG_SETMASK, nullptr, &in_job); });
  worker.wait();
  for (int sig : {SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGCHLD})
    EXPECT_TRUE(sigismember(&in_job, sig)) << "signal " << sig;
  pthread_sigmask(SIG_SETMASK, nullptr, &after);
  for (int sig = 1; sig < NSIG; ++sig) EXPECT_EQ(sigismember(&before, sig), sigismember(&after, sig)) << sig;
}

TEST(EvaluationThread, StopFinishesTheJobAndTheNextSubmitStartsAgain) {
  EvaluationThread worker;
  bool ran = false;
  worker.submit([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ran = true;
  });
  worker.stop();
  EXPECT_TRUE(ran);
  worker.stop();  // twice is fine
  int n = 0;
  worker.submit([&] { n = 2; });
  worker.wait();
  EXPECT_EQ(n, 2);
}
