// powersync.sync_lines(token_claims, request): one complete pass of the sync protocol as NDJSON
// lines, for psql and trusted backends. The protocol state machine (src/protocol) runs against a
// storage adapter that calls the SQL pull API through SPI.
extern "C" {
#include "postgres.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
}

#include <nlohmann/json.hpp>

#include "powersync/pg/boundary.h"
#include "powersync/pg/spi.h"
#include "powersync/protocol/sync_stream.h"

extern "C" {
PG_FUNCTION_INFO_V1(powersync_sync_lines);
}

namespace {

using namespace powersync;
using namespace powersync::pg;
using protocol::BucketChecksum;
using protocol::BucketRequest;
using protocol::Checkpoint;
using protocol::OpRecord;

// The pull API over SPI. Prepared statements live for the backend (the SQL names are a contract).
class SpiSyncStorage : public protocol::SyncStorage {
 public:
  Checkpoint checkpoint() override {
    if (spi::exec("SELECT op_id, lsn::text FROM powersync.checkpoint()") == 0)
      throw invalid_input("no active sync rules version has a checkpoint yet", {},
                          "deploy sync rules with powersync.deploy_sync_rules() and wait for the initial snapshot");
    return Checkpoint{spi::int64_at(0, 0), spi::text(0, 1).value_or("")};
  }

  std::vector<BucketRequest> request_buckets(const protocol::SyncIdentity& who, int64_t at) override {
    static spi::Statement st("SELECT bucket, priority FROM powersync.request_buckets($1::jsonb, $2::jsonb, $3)",
                             {TEXTOID, TEXTOID, INT8OID});
    Datum args[3] = {spi::text_datum(who.token_claims_json), spi::text_datum(who.parameters_json), Int64GetDatum(at)};
    uint64_t n = st.run(args);
    std::vector<BucketRequest> out;
    for (uint64_t i = 0; i < n; ++i)
      out.push_back(BucketRequest{spi::text(i, 0).value_or(""), static_cast<int>(spi::int64_at(i, 1, 3))});
    spi::release();
    return out;
  }

  std::vector<BucketChecksum> bucket_checksums(const std::vector<std::string>& buckets, int64_t at) override {
    static spi::Statement st("SELECT bucket, checksum, count FROM powersync.bucket_checksums($1, $2)", {TEXTARRAYOID, INT8OID});
    Datum args[2] = {spi::text_array(buckets), Int64GetDatum(at)};
    uint64_t n = st.run(args);
    std::vector<BucketChecksum> out;
    for (uint64_t i = 0; i < n; ++i)
      out.push_back(BucketChecksum{spi::text(i, 0).value_or(""), static_cast<uint32_t>(spi::int64_at(i, 1)), spi::int64_at(i, 2)});
    spi::release();
    return out;
  }

  std::vector<OpRecord> bucket_ops(const std::string& bucket, int64_t after, int64_t at, int max_ops) override {
    static spi::Statement st(
        "SELECT op_id, op, object_type, object_id, subkey, data, checksum FROM powersync.bucket_ops($1, $2, $3, $4)",
        {TEXTOID, INT8OID, INT8OID, INT4OID});
    Datum args[4] = {spi::text_datum(bucket), Int64GetDatum(after), Int64GetDatum(at), Int32GetDatum(max_ops)};
    uint64_t n = st.run(args);
    std::vector<OpRecord> out;
    out.reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      OpRecord op;
      op.op_id = spi::int64_at(i, 0);
      op.op = spi::text(i, 1).value_or("");
      op.object_type = spi::text(i, 2).value_or("");
      op.object_id = spi::text(i, 3).value_or("");
      op.subkey = spi::text(i, 4).value_or("");
      op.data = spi::text(i, 5);
      op.checksum = static_cast<uint32_t>(spi::int64_at(i, 6));
      if (op.data && (op.op == "MOVE" || op.op == "CLEAR")) op.target_op = protocol::compaction_target(*op.data);
      out.push_back(std::move(op));
    }
    spi::release();
    return out;
  }

  std::optional<int64_t> write_checkpoint(const std::string& user_id, const std::string& client_id,
                                          const Checkpoint& at) override {
    if (user_id.empty()) return std::nullopt;
    static spi::Statement st("SELECT powersync.write_checkpoint_at($1, $2, $3)", {TEXTOID, TEXTOID, INT8OID});
    Datum args[3] = {spi::text_datum(user_id), spi::text_datum(client_id), Int64GetDatum(at.op_id)};
    st.run(args);
    std::optional<int64_t> v;
    if (!spi::is_null(0, 0)) v = spi::int64_at(0, 0);
    spi::release();
    return v;
  }
};

std::string jsonb_text(Datum d) {
  char* s = pg_call([&] { return JsonbToCString(nullptr, &DatumGetJsonbP(d)->root, 0); });
  std::string out(s);
  return out;
}

}  // namespace

extern "C" Datum powersync_sync_lines(PG_FUNCTION_ARGS) {
  return pg_entry([&]() -> Datum {
    if (PG_ARGISNULL(0)) throw invalid_input("token_claims must not be NULL", {}, "pass the verified JWT payload, e.g. '{\"sub\":\"u1\"}'");
    std::string claims_text = jsonb_text(PG_GETARG_DATUM(0));
    std::string request_text = PG_ARGISNULL(1) ? "{}" : jsonb_text(PG_GETARG_DATUM(1));
    auto claims = nlohmann::json::parse(claims_text, nullptr, false);
    if (!claims.is_object()) throw invalid_input("token_claims must be a JSON object (the JWT payload)");
    protocol::SyncRequest request = protocol::parse_sync_request(request_text);
    protocol::SyncIdentity who;
    who.token_claims_json = claims_text;
    who.parameters_json = request.parameters_json;
    if (auto sub = claims.find("sub"); sub != claims.end() && !sub->is_null())
      who.user_id = sub->is_string() ? sub->get<std::string>() : sub->dump();
    who.client_id = request.client_id;

    pg_call([] { SPI_connect(); });
    SpiSyncStorage storage;
    std::vector<std::string> lines = protocol::run_sync_pass(storage, who, request);
    pg_call([] { SPI_finish(); });

    pg_call([&] { InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC); });
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    for (const auto& line : lines) {
      const char* p = line.c_str();
      pg_call([&] {
        Datum value = CStringGetTextDatum(p);
        bool isnull = false;
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
      });
    }
    return (Datum)0;
  });
}
