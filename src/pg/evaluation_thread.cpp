// The replication worker's evaluation thread (see evaluation_thread.h). No Postgres headers here on
// purpose: nothing this thread runs may reach Postgres.
#include "powersync/pg/evaluation_thread.h"

#include <pthread.h>
#include <signal.h>

#include <system_error>

namespace powersync::pg {

void EvaluationThread::submit(std::function<void()> job) {
  if (has_job_) wait();
  if (!thread_.joinable()) {
    // A thread inherits the creator's signal mask: block everything around creation, so SIGTERM,
    // SIGHUP, SIGUSR1 (latches) and the rest are only ever delivered to the main thread.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    try {
      stopping_ = false;
      thread_ = std::thread([this] { run(); });
    } catch (...) {
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
      throw;
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = std::move(job);
    error_ = nullptr;
    done_ = false;
  }
  has_job_ = true;
  cv_.notify_all();
}

void EvaluationThread::wait() {
  if (!has_job_) return;
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [this] { return done_; });
    error = std::move(error_);
    error_ = nullptr;
  }
  has_job_ = false;
  if (error) std::rethrow_exception(error);
}

void EvaluationThread::abandon() noexcept {
  try {
    wait();
  } catch (...) {
  }
}

void EvaluationThread::stop() noexcept {
  abandon();
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void EvaluationThread::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !done_; });
    if (!done_) {
      std::function<void()> job = std::move(job_);
      lock.unlock();
      std::exception_ptr error;
      try {
        job();
      } catch (...) {  // handed to the main thread, which rethrows it inside its error boundary
        error = std::current_exception();
      }
      job = nullptr;
      lock.lock();
      error_ = error;
      done_ = true;
      cv_.notify_all();
      continue;
    }
    if (stopping_) return;
  }
}

}  // namespace powersync::pg
