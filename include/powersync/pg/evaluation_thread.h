// The replication worker's second thread: runs one job at a time (rule evaluation of a pass of changes)
// while the main thread does Postgres work. Pure C++: jobs must never call Postgres.
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace powersync::pg {

class EvaluationThread {
 public:
  EvaluationThread() = default;
  EvaluationThread(const EvaluationThread&) = delete;
  EvaluationThread& operator=(const EvaluationThread&) = delete;
  ~EvaluationThread() { stop(); }

  // Starts the job; the thread is created on first use, with every signal blocked (Postgres' handlers
  // must only ever run on the main thread). At most one job is in flight: call wait() before the next.
  void submit(std::function<void()> job);
  // Waits for the job in flight (if any) and rethrows what it threw.
  void wait();
  // Waits for the job in flight, dropping its exception: for unwinding, when its result is not wanted.
  void abandon() noexcept;
  bool busy() const { return has_job_; }
  // Finishes the job in flight and joins the thread (worker exit).
  void stop() noexcept;

 private:
  void run();
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::function<void()> job_;
  bool has_job_ = false;  // submitted and not waited for (main thread only)
  bool done_ = true;      // the thread finished the current job
  bool stopping_ = false;
  std::exception_ptr error_;
};

// powersync.evaluation_thread (row_ops.cpp): whether the worker uses the thread; defined by _PG_init.
extern bool evaluation_thread_enabled;
void define_evaluation_thread_setting();

}  // namespace powersync::pg
