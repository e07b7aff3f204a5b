// Batched pull queries. Each batch runs as one statement on a pooled connection; a batch that
// fails (e.g. one user exceeds the bucket limit) is retried item by item so that only the
// offending stream sees the error.
#include "powersync/gateway/sync_queries.h"

#include <charconv>
#include <unordered_map>

namespace powersync::gateway {

using protocol::BucketState;
using protocol::OpRecord;

namespace {

int64_t to_int64(const char* s, int len) {
  int64_t v = 0;
  std::from_chars(s, s + len, v);
  return v;
}

const char* kResolveSql =
    "WITH req AS (SELECT r.claims, r.params, r.i FROM unnest($1::jsonb[], $2::jsonb[]) WITH ORDINALITY AS r(claims, params, i)),"
    " b AS (SELECT req.i, rb.bucket, rb.priority FROM req"
    "       CROSS JOIN LATERAL powersync.request_buckets(req.claims, req.params, $3::bigint) rb),"
    " c AS (SELECT cs.bucket, cs.checksum, cs.count"
    "       FROM powersync.bucket_checksums(ARRAY(SELECT DISTINCT bucket FROM b), $3::bigint) cs)"
    " SELECT b.i, b.bucket, b.priority, c.checksum, c.count, NULL::bigint AS write_checkpoint"
    " FROM b LEFT JOIN c ON c.bucket = b.bucket";

const char* kWriteCheckpointUnion =
    " UNION ALL SELECT w.i, NULL, NULL, NULL, NULL, powersync.write_checkpoint_at(w.u, w.c, $3::bigint)"
    " FROM unnest($4::text[], $5::text[]) WITH ORDINALITY AS w(u, c, i)";

const char* kOpsSingleSql = "SELECT * FROM powersync.bucket_ops($1, $2::bigint, $3::bigint, $4::int)";

const char* kOpsBatchSql =
    "SELECT r.i, o.* FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::int[]) WITH ORDINALITY AS r(bucket, after, cp, lim, i)"
    " CROSS JOIN LATERAL powersync.bucket_ops(r.bucket, r.after, r.cp, r.lim) AS o"
    " ORDER BY r.i, o.op_id";  // no WITH ORDINALITY: it would stop the planner inlining bucket_ops

const char* kChecksumsSql = "SELECT bucket, checksum, count FROM powersync.bucket_checksums($1::text[], $2::bigint)";
constexpr size_t kMaxChecksumBuckets = 2000;  // per statement: a big fan-out spreads over the pool

std::string ops_key(const protocol::OpsQuery& q) {
  return q.bucket + '\x1f' + std::to_string(q.after) + '\x1f' + std::to_string(q.at_checkpoint) + '\x1f' +
         std::to_string(q.max_ops);
}

}  // namespace

std::string sync_error_code(const std::string& message) {
  return message.find("PSYNC_S2305") != std::string::npos ? "PSYNC_S2305" : "PSYNC_S2001";
}

void SyncQueries::resolve(const protocol::SyncIdentity& who, const protocol::Checkpoint& at,
                          std::function<void(ResolveOutcome)> done) {
  resolve_pending_.push_back(ResolveItem{who, at, std::move(done)});
  schedule_resolve();
}

void SyncQueries::schedule_resolve() {
  if (resolve_acquiring_ || resolve_pending_.empty()) return;
  resolve_acquiring_ = true;
  pool_.acquire([this](std::shared_ptr<PgConnection> conn) {
    resolve_acquiring_ = false;
    // Everything queued while waiting for the connection for the same checkpoint goes together.
    std::vector<ResolveItem> batch, rest;
    protocol::Checkpoint at = resolve_pending_.front().at;
    for (auto& item : resolve_pending_) {
      if (item.at == at && batch.size() < max_batch_) batch.push_back(std::move(item));
      else rest.push_back(std::move(item));
    }
    resolve_pending_.swap(rest);
    schedule_resolve();  // more work may use another connection meanwhile
    run_resolve_batch(std::move(conn), std::move(batch));
  });
}

void SyncQueries::run_resolve_batch(std::shared_ptr<PgConnection> conn, std::vector<ResolveItem> batch) {
  std::vector<std::string> claims, params, users, clients;
  for (const auto& item : batch) {
    claims.push_back(item.who.token_claims_json);
    params.push_back(item.who.parameters_json);
    users.push_back(item.who.user_id);
    clients.push_back(item.who.client_id);
  }
  std::string sql = kResolveSql;
  PgParams args{pg_array_literal(claims), pg_array_literal(params), std::to_string(batch.front().at.op_id)};
  if (features_.write_checkpoint_at) {
    sql += kWriteCheckpointUnion;
    args.push_back(pg_array_literal(users));
    args.push_back(pg_array_literal(clients));
  }
  auto shared = std::make_shared<std::vector<ResolveItem>>(std::move(batch));
  conn->query(std::move(sql), std::move(args), [this, conn, shared](PgResult r) {
    pool_.release(conn);
    auto& items = *shared;
    if (!r.ok()) {
      if (items.size() > 1) {  // isolate the failing stream(s)
        for (auto& item : items) resolve(item.who, item.at, std::move(item.done));
        return;
      }
      ResolveOutcome out;
      out.code = sync_error_code(r.error());
      out.message = r.error();
      items.front().done(std::move(out));
      return;
    }
    std::vector<ResolveOutcome> outs(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      outs[i].ok = true;
      outs[i].resolved.checkpoint = items[i].at;
    }
    for (int row = 0; row < r.rows(); ++row) {
      size_t i = static_cast<size_t>(to_int64(r.value(row, 0), r.length(row, 0))) - 1;
      if (i >= outs.size()) continue;
      auto& res = outs[i].resolved;
      if (r.is_null(row, 1)) {
        if (!r.is_null(row, 5)) res.write_checkpoint = to_int64(r.value(row, 5), r.length(row, 5));
        continue;
      }
      BucketState b;
      b.bucket.assign(r.value(row, 1), static_cast<size_t>(r.length(row, 1)));
      b.priority = r.is_null(row, 2) ? 3 : static_cast<int>(to_int64(r.value(row, 2), r.length(row, 2)));
      if (!r.is_null(row, 3)) b.checksum = static_cast<uint32_t>(to_int64(r.value(row, 3), r.length(row, 3)));
      if (!r.is_null(row, 4)) b.count = to_int64(r.value(row, 4), r.length(row, 4));
      // A bucket produced by several definitions keeps its highest priority (lowest number).
      bool merged = false;
      for (auto& existing : res.buckets)
        if (existing.bucket == b.bucket) {
          existing.priority = std::min(existing.priority, b.priority);
          merged = true;
        }
      if (!merged) res.buckets.push_back(std::move(b));
    }
    for (size_t i = 0; i < items.size(); ++i) items[i].done(std::move(outs[i]));
  });
}

void SyncQueries::checksums(std::vector<std::string> buckets, const protocol::Checkpoint& at,
                            std::function<void(ChecksumsOutcome)> done) {
  checksums_pending_.push_back(ChecksumsItem{std::move(buckets), at, std::move(done)});
  schedule_checksums();
}

void SyncQueries::schedule_checksums() {
  if (checksums_acquiring_ || checksums_pending_.empty()) return;
  checksums_acquiring_ = true;
  pool_.acquire([this](std::shared_ptr<PgConnection> conn) {
    checksums_acquiring_ = false;
    std::vector<ChecksumsItem> batch, rest;
    protocol::Checkpoint at = checksums_pending_.front().at;
    size_t total = 0;
    for (auto& item : checksums_pending_) {
      if (item.at == at && total < kMaxChecksumBuckets) {
        total += item.buckets.size();
        batch.push_back(std::move(item));
      } else {
        rest.push_back(std::move(item));
      }
    }
    checksums_pending_.swap(rest);
    schedule_checksums();
    run_checksums_batch(std::move(conn), std::move(batch));
  });
}

void SyncQueries::run_checksums_batch(std::shared_ptr<PgConnection> conn, std::vector<ChecksumsItem> batch) {
  std::vector<std::string> names;
  std::unordered_map<std::string, std::pair<uint32_t, int64_t>> totals;
  for (const auto& item : batch)
    for (const auto& b : item.buckets)
      if (totals.emplace(b, std::pair<uint32_t, int64_t>{0, 0}).second) names.push_back(b);
  PgParams args{pg_array_literal(names), std::to_string(batch.front().at.op_id)};
  auto shared = std::make_shared<std::vector<ChecksumsItem>>(std::move(batch));
  auto sums = std::make_shared<decltype(totals)>(std::move(totals));
  conn->query(kChecksumsSql, std::move(args), [this, conn, shared, sums](PgResult r) {
    pool_.release(conn);
    for (int row = 0; r.ok() && row < r.rows(); ++row) {
      auto it = sums->find(std::string(r.value(row, 0), static_cast<size_t>(r.length(row, 0))));
      if (it == sums->end()) continue;
      it->second.first = static_cast<uint32_t>(to_int64(r.value(row, 1), r.length(row, 1)));
      it->second.second = to_int64(r.value(row, 2), r.length(row, 2));
    }
    for (auto& item : *shared) {
      ChecksumsOutcome out;
      out.ok = r.ok();
      if (!r.ok()) {
        out.code = sync_error_code(r.error());
        out.message = r.error();
      } else {
        for (auto& name : item.buckets) {
          protocol::BucketState b;
          const auto& t = (*sums)[name];
          b.checksum = t.first;
          b.count = t.second;
          b.bucket = std::move(name);
          out.buckets.push_back(std::move(b));
        }
      }
      item.done(std::move(out));
    }
  });
}

void SyncQueries::ops(const protocol::OpsQuery& query, std::function<void(OpsOutcome)> done) {
  auto& item = ops_pending_[ops_key(query)];
  item.query = query;
  item.waiters.push_back(std::move(done));
  schedule_ops();
}

void SyncQueries::schedule_ops() {
  if (ops_acquiring_ || ops_pending_.empty()) return;
  ops_acquiring_ = true;
  pool_.acquire([this](std::shared_ptr<PgConnection> conn) {
    ops_acquiring_ = false;
    std::vector<OpsItem> batch;
    while (!ops_pending_.empty() && batch.size() < max_batch_) {
      batch.push_back(std::move(ops_pending_.begin()->second));
      ops_pending_.erase(ops_pending_.begin());
    }
    schedule_ops();
    run_ops_batch(std::move(conn), std::move(batch));
  });
}

void SyncQueries::run_ops_batch(std::shared_ptr<PgConnection> conn, std::vector<OpsItem> batch) {
  std::string sql;
  PgParams args;
  if (batch.size() == 1) {
    const auto& q = batch.front().query;
    sql = kOpsSingleSql;
    args = {q.bucket, std::to_string(q.after), std::to_string(q.at_checkpoint), std::to_string(q.max_ops)};
  } else {
    std::vector<std::string> buckets, afters, cps, limits;
    for (const auto& item : batch) {
      buckets.push_back(item.query.bucket);
      afters.push_back(std::to_string(item.query.after));
      cps.push_back(std::to_string(item.query.at_checkpoint));
      limits.push_back(std::to_string(item.query.max_ops));
    }
    sql = kOpsBatchSql;
    args = {pg_array_literal(buckets), pg_array_literal(afters), pg_array_literal(cps), pg_array_literal(limits)};
  }
  auto shared = std::make_shared<std::vector<OpsItem>>(std::move(batch));
  conn->query(std::move(sql), std::move(args), [this, conn, shared](PgResult r) {
    pool_.release(conn);
    auto& items = *shared;
    auto deliver = [](OpsItem& item, const OpsOutcome& out) {
      for (auto& w : item.waiters) w(out);
    };
    if (!r.ok()) {
      OpsOutcome out;
      out.code = sync_error_code(r.error());
      out.message = r.error();
      for (auto& item : items) deliver(item, out);
      return;
    }
    std::vector<OpsOutcome> outs(items.size());
    std::string error;
    bool ok = true;
    if (items.size() == 1) {
      ok = parse_ops(r, 0, r.rows(), outs[0].ops, error);
    } else {
      // Rows come grouped by item index (column 0, 1-based) in ascending order.
      int row = 0;
      while (ok && row < r.rows()) {
        int64_t i = to_int64(r.value(row, 0), r.length(row, 0));
        int end = row;
        while (end < r.rows() && to_int64(r.value(end, 0), r.length(end, 0)) == i) ++end;
        if (i >= 1 && static_cast<size_t>(i) <= outs.size()) ok = parse_ops(r, row, end, outs[i - 1].ops, error);
        row = end;
      }
    }
    for (size_t i = 0; i < items.size(); ++i) {
      outs[i].ok = ok;
      if (!ok) {
        outs[i].code = "PSYNC_S2001";
        outs[i].message = error;
        outs[i].ops.clear();
      }
      deliver(items[i], outs[i]);
    }
  });
}

bool SyncQueries::parse_ops(const PgResult& r, int first_row, int end_row, std::vector<OpRecord>& out, std::string& error) {
  int c_op_id = r.column("op_id"), c_op = r.column("op"), c_type = r.column("object_type"), c_id = r.column("object_id"),
      c_subkey = r.column("subkey"), c_data = r.column("data"), c_checksum = r.column("checksum"),
      c_target = r.column("target_op");
  if (c_op_id < 0 || c_op < 0 || c_checksum < 0) {
    error = "powersync.bucket_ops returned no op_id/op/checksum columns";
    return false;
  }
  out.reserve(out.size() + static_cast<size_t>(end_row - first_row));
  auto text = [&](int row, int col, std::string& dst) {
    if (col >= 0 && !r.is_null(row, col)) dst.assign(r.value(row, col), static_cast<size_t>(r.length(row, col)));
  };
  for (int row = first_row; row < end_row; ++row) {
    OpRecord op;
    op.op_id = to_int64(r.value(row, c_op_id), r.length(row, c_op_id));
    text(row, c_op, op.op);
    text(row, c_type, op.object_type);
    text(row, c_id, op.object_id);
    text(row, c_subkey, op.subkey);
    if (c_data >= 0 && !r.is_null(row, c_data)) op.data.emplace(r.value(row, c_data), static_cast<size_t>(r.length(row, c_data)));
    op.checksum = static_cast<uint32_t>(to_int64(r.value(row, c_checksum), r.length(row, c_checksum)));
    if (c_target >= 0 && !r.is_null(row, c_target)) op.target_op = to_int64(r.value(row, c_target), r.length(row, c_target));
    else if (op.data && (op.op == "MOVE" || op.op == "CLEAR")) op.target_op = protocol::compaction_target(*op.data);
    out.push_back(std::move(op));
  }
  return true;
}

}  // namespace powersync::gateway
