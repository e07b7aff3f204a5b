// The per-connection sync state machine (spec §1.5): checkpoint / diff computation, download
// order by priority, chunking, supersession and compaction invalidation.
#include "powersync/protocol/sync_stream.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "powersync/error.h"
#include "powersync/protocol/bson_lines.h"

namespace powersync::protocol {

SyncStream::SyncStream(const SyncRequest& request, SyncLimits limits) : limits_(limits), raw_data_(request.raw_data) {
  for (const auto& [name, after] : request.buckets) positions_[name] = after;
  if (limits_.ops_fetch_limit < 1) limits_.ops_fetch_limit = 1;
  if (limits_.max_ops_per_line < 1) limits_.max_ops_per_line = 1;
}

bool SyncStream::is_new(const Checkpoint& cp) const { return !sent_first_ || cp != resolved_; }

bool SyncStream::wants_supersession() const {
  return ops_sent_ >= limits_.supersede_after_ops && have_latest_ && latest_ != resolved_;
}

SyncStream::Need SyncStream::need() const {
  if (failure_) return Need::Finished;
  if (downloading_) return wants_supersession() ? Need::Resolve : Need::Ops;
  if (have_latest_ && is_new(latest_)) return Need::Resolve;
  return Need::WaitCheckpoint;
}

void SyncStream::on_checkpoint(const Checkpoint& cp) {
  // Checkpoints only move forward; a stale notification must not roll the stream back.
  if (have_latest_ && cp.op_id < latest_.op_id) return;
  latest_ = cp;
  have_latest_ = true;
}

void SyncStream::fail(std::string code, std::string message) {
  failure_ = SyncFailure{std::move(code), std::move(message)};
  downloading_ = false;
}

void SyncStream::on_resolved(const ResolvedCheckpoint& resolved) {
  if (failure_) return;
  if (resolved.buckets.size() > limits_.max_buckets) {
    fail("PSYNC_S2305", "Too many buckets: " + std::to_string(resolved.buckets.size()) +
                            " (limit " + std::to_string(limits_.max_buckets) + ")");
    return;
  }
  std::map<std::string, BucketState> next;
  for (const auto& b : resolved.buckets) next[b.bucket] = b;
  resolved_ = resolved.checkpoint;

  std::vector<std::string> changed;
  if (!sent_first_) {
    std::vector<BucketState> all;
    for (const auto& [name, b] : next) {
      all.push_back(b);
      changed.push_back(name);
    }
    put_line(checkpoint_line(resolved.checkpoint.op_id, resolved.write_checkpoint, all));
    sent_first_ = true;
  } else {
    std::vector<BucketState> updated;
    std::vector<std::string> removed;
    for (const auto& [name, b] : next) {
      auto it = last_sent_.find(name);
      if (it == last_sent_.end() || it->second.checksum != b.checksum || it->second.count != b.count ||
          it->second.priority != b.priority) {
        updated.push_back(b);
        changed.push_back(name);
      }
    }
    for (const auto& [name, b] : last_sent_)
      if (!next.count(name)) removed.push_back(name);
    bool write_checkpoint_changed = resolved.write_checkpoint != last_write_checkpoint_;
    if (updated.empty() && removed.empty() && !write_checkpoint_changed) return;  // nothing to say
    put_line(checkpoint_diff_line(resolved.checkpoint.op_id, resolved.write_checkpoint, updated, removed));
  }
  last_sent_ = std::move(next);
  last_write_checkpoint_ = resolved.write_checkpoint;

  // An interrupted download continues under the new checkpoint from the positions reached.
  if (downloading_) {
    for (size_t g = group_; g < groups_.size(); ++g)
      for (size_t i = (g == group_ ? bucket_ : 0); i < groups_[g].second.size(); ++i)
        pending_.insert(groups_[g].second[i]);
    downloading_ = false;
  }
  for (auto it = positions_.begin(); it != positions_.end();)
    it = last_sent_.count(it->first) ? std::next(it) : positions_.erase(it);
  for (const auto& [name, b] : last_sent_) positions_.emplace(name, 0);
  for (const auto& name : pending_)
    if (last_sent_.count(name)) changed.push_back(name);
  pending_.clear();
  current_ = resolved.checkpoint;
  start_download(std::move(changed));
}

void SyncStream::start_download(std::vector<std::string> to_fetch) {
  std::sort(to_fetch.begin(), to_fetch.end());
  to_fetch.erase(std::unique(to_fetch.begin(), to_fetch.end()), to_fetch.end());
  std::map<int, std::vector<std::string>> by_priority;
  for (auto& name : to_fetch) by_priority[last_sent_[name].priority].push_back(std::move(name));
  groups_.assign(by_priority.begin(), by_priority.end());
  // With nothing to download, one empty group still yields the checkpoint_complete line.
  if (groups_.empty()) groups_.emplace_back(3, std::vector<std::string>{});
  group_ = 0;
  bucket_ = 0;
  ops_sent_ = 0;
  invalidated_ = false;
  downloading_ = true;
  if (groups_[0].second.empty()) finish_current_bucket();
  else prepare_ops_query();
}

void SyncStream::prepare_ops_query() {
  const std::string& name = groups_[group_].second[bucket_];
  ops_query_ = OpsQuery{name, positions_[name], current_.op_id, limits_.ops_fetch_limit};
}

void SyncStream::on_ops(const std::vector<OpRecord>& ops) {
  if (!downloading_ || failure_) return;
  const std::string& name = ops_query_.bucket;
  int64_t after = ops_query_.after;
  int64_t last = after;
  for (const auto& op : ops) {
    // Storage must honour the query; anything else would break the client's checksums.
    if (op.op_id <= last || op.op_id > current_.op_id) {
      fail("PSYNC_S2001", "storage returned op " + std::to_string(op.op_id) + " for bucket " + name +
                              " outside (" + std::to_string(last) + ", " + std::to_string(current_.op_id) + "]");
      return;
    }
    last = op.op_id;
    if ((op.op == "MOVE" || op.op == "CLEAR") && op.target_op > current_.op_id) invalidated_ = true;
  }
  bool more = ops.size() >= static_cast<size_t>(ops_query_.max_ops);
  if (!ops.empty()) {
    emit_data(ops, more);
    positions_[name] = last;
    ops_sent_ += static_cast<int64_t>(ops.size());
  }
  if (more) {
    prepare_ops_query();
    return;
  }
  ++bucket_;
  finish_current_bucket();
}

// Called after a bucket finished: emits the group's complete line when the group is done and
// moves on to the next bucket (or ends the download).
void SyncStream::finish_current_bucket() {
  while (bucket_ >= groups_[group_].second.size()) {
    bool last_group = group_ + 1 == groups_.size();
    if (!invalidated_) {
      if (last_group) {
        put_line(checkpoint_complete_line(current_.op_id));
        ++completed_;
      } else {
        put_line(partial_checkpoint_complete_line(current_.op_id, groups_[group_].first));
      }
    }
    if (last_group) {
      downloading_ = false;
      return;
    }
    ++group_;
    bucket_ = 0;
  }
  prepare_ops_query();
}

void SyncStream::emit_data(const std::vector<OpRecord>& ops, bool more) {
  size_t begin = 0;
  int64_t after = ops_query_.after;
  while (begin < ops.size()) {
    size_t end = begin;
    size_t bytes = 0;
    while (end < ops.size() && end - begin < limits_.max_ops_per_line && bytes < limits_.max_line_data_bytes) {
      bytes += ops[end].data ? ops[end].data->size() : 0;
      bytes += ops[end].object_id.size() + ops[end].subkey.size() + 64;
      ++end;
    }
    bool line_has_more = end < ops.size() || more;
    if (!bson_) {
      append_data_line(out_, ops_query_.bucket, after, line_has_more, ops, begin, end, raw_data_);
    } else if (raw_data_) {
      append_data_document(out_, ops_query_.bucket, after, line_has_more, ops, begin, end);
    } else {
      std::string line;
      append_data_line(line, ops_query_.bucket, after, line_has_more, ops, begin, end, raw_data_);
      append_bson_documents(out_, line);
    }
    after = ops[end - 1].op_id;
    begin = end;
  }
}

void SyncStream::put_line(const std::string& ndjson) {
  if (bson_) append_bson_documents(out_, ndjson);
  else out_ += ndjson;
}

std::string SyncStream::take_output() {
  std::string s;
  s.swap(out_);
  return s;
}

int64_t compaction_target(const std::string& data) {
  auto j = nlohmann::json::parse(data, nullptr, false);
  if (!j.is_object()) return 0;
  auto it = j.find("target");
  if (it == j.end()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (!it->is_string()) return 0;
  try {
    return parse_op_id(it->get<std::string>(), "target");
  } catch (const Error&) {
    return 0;
  }
}

ResolvedCheckpoint resolve_checkpoint(SyncStorage& storage, const SyncIdentity& who, const Checkpoint& at) {
  ResolvedCheckpoint r;
  r.checkpoint = at;
  auto requested = storage.request_buckets(who, at.op_id);
  std::vector<std::string> names;
  std::map<std::string, int> priority;
  for (const auto& b : requested) {
    // A bucket produced by several definitions keeps its highest priority (lowest number).
    auto [it, inserted] = priority.emplace(b.bucket, b.priority);
    if (inserted) names.push_back(b.bucket);
    else it->second = std::min(it->second, b.priority);
  }
  std::map<std::string, BucketChecksum> sums;
  if (!names.empty())
    for (auto& c : storage.bucket_checksums(names, at.op_id)) sums[c.bucket] = c;
  for (const auto& name : names) {
    BucketState s;
    s.bucket = name;
    s.priority = priority[name];
    if (auto it = sums.find(name); it != sums.end()) {
      s.checksum = it->second.checksum;
      s.count = it->second.count;
    }
    r.buckets.push_back(std::move(s));
  }
  r.write_checkpoint = storage.write_checkpoint(who.user_id, who.client_id, at);
  return r;
}

std::vector<std::string> run_sync_pass(SyncStorage& storage, const SyncIdentity& who, const SyncRequest& request,
                                       SyncLimits limits) {
  SyncStream stream(request, limits);
  stream.on_checkpoint(storage.checkpoint());
  std::string output;
  bool resolved_once = false;
  for (;;) {
    auto need = stream.need();
    if (need == SyncStream::Need::Resolve && !resolved_once) {
      resolved_once = true;
      stream.on_resolved(resolve_checkpoint(storage, who, stream.resolve_target()));
    } else if (need == SyncStream::Need::Ops) {
      const auto& q = stream.ops_query();
      stream.on_ops(storage.bucket_ops(q.bucket, q.after, q.at_checkpoint, q.max_ops));
    } else {
      break;
    }
    output += stream.take_output();
  }
  if (auto f = stream.failure()) throw invalid_input(f->code + ": " + f->message);
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = output.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(output.substr(start, nl - start));
  return lines;
}

}  // namespace powersync::protocol
