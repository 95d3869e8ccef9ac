#include "engine/event_channel.h"

namespace pensieve::engine {

void EventChannel::notify_locked(std::unique_lock<std::mutex>& lock) {
  // The callback runs under our lock, so that once set_notify({}) returns it is neither running nor will
  // run again: a caller may then free whatever the callback touches.
  if (notify_) notify_();
  lock.unlock();
  ready_.notify_all();
}

void EventChannel::push(GenerationEvent event) {
  std::unique_lock lock(mutex_);
  events_.push_back(std::move(event));
  notify_locked(lock);
}

void EventChannel::set_usage(const Usage& usage) {
  std::lock_guard lock(mutex_);
  usage_ = usage;
}

void EventChannel::close(const Usage& usage) {
  std::unique_lock lock(mutex_);
  usage_ = usage;
  ended_ = true;
  notify_locked(lock);
}

bool EventChannel::backlogged() const {
  std::lock_guard lock(mutex_);
  return backlog_limit_ > 0 && events_.size() >= backlog_limit_;
}

bool EventChannel::drain(std::vector<GenerationEvent>& out) {
  std::unique_lock lock(mutex_);
  const bool had = !events_.empty();
  const bool was_backlogged = backlog_limit_ > 0 && events_.size() >= backlog_limit_;
  for (auto& e : events_) out.push_back(std::move(e));
  events_.clear();
  const bool more = had || !ended_;
  lock.unlock();
  if (was_backlogged) {
    if (auto engine = engine_.lock()) engine->wake();  // its paused sequences may go on
  }
  return more;
}

void EventChannel::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  ready_.wait_for(lock, timeout, [&] { return !events_.empty() || ended_; });
}

void EventChannel::set_notify(std::function<void()> notify) {
  std::unique_lock lock(mutex_);
  notify_ = std::move(notify);
  if (!events_.empty() || ended_) {
    notify_locked(lock);
  }
}

void EventChannel::cancel() {
  if (cancelled_.exchange(true, std::memory_order_acq_rel)) return;
  if (auto engine = engine_.lock()) engine->wake();
}

Usage EventChannel::usage() const {
  std::lock_guard lock(mutex_);
  return usage_;
}

}  // namespace pensieve::engine
