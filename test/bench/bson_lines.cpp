// Benchmark of BSON sync streams' encoding (gateway --bson-streams): the NDJSON sync lines of a
// 200,000-op download (1,000-op data lines of ~300-byte rows, as in gateway_bench.sh) re-encoded as
// BSON documents, by the streaming SAX encoder the gateway uses and, side by side in the same run,
// by the previous per-line nlohmann::json::to_bson(json::parse(line)), and data lines encoded
// directly from the op records (what the gateway does now), next to plain NDJSON encoding of the
// same ops. Prints ops/s and ratios.   bson_lines [ops=200000] [rounds=3]
#include "powersync/protocol/bson_lines.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "powersync/protocol/sync_lines.h"

namespace {

std::vector<powersync::protocol::OpRecord> download_ops(long ops) {
  using namespace powersync::protocol;
  std::vector<OpRecord> all;
  for (long i = 1; i <= ops; ++i) {
    OpRecord op;
    op.op_id = 1000000 + i;
    op.op = "PUT";
    op.object_type = "todos";
    op.object_id = "t" + std::to_string(i);
    op.subkey = "1/" + std::to_string(i * 7919);
    op.data = "{\"id\":\"t" + std::to_string(i) + "\",\"owner\":\"big\",\"description\":\"todo number " + std::to_string(i) +
              "\",\"completed\":0,\"list_id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\"}";
    op.checksum = static_cast<uint32_t>(i * 2654435761u);
    all.push_back(std::move(op));
  }
  return all;
}

// The download's data lines, 1,000 ops each: NDJSON (direct = false) or BSON from the records.
std::string encode(const std::vector<powersync::protocol::OpRecord>& ops, bool direct) {
  std::string out;
  for (size_t begin = 0; begin < ops.size(); begin += 1000) {
    size_t end = std::min(ops.size(), begin + 1000);
    int64_t after = ops[begin].op_id - 1;
    if (direct) powersync::protocol::append_data_document(out, "1#mine[\"big\"]", after, end != ops.size(), ops, begin, end);
    else powersync::protocol::append_data_line(out, "1#mine[\"big\"]", after, end != ops.size(), ops, begin, end, true);
  }
  return out;
}

std::string tree_encode(const std::string& lines) {  // the previous encoder
  std::string out;
  size_t start = 0;
  while (start < lines.size()) {
    size_t end = lines.find('\n', start);
    auto doc = nlohmann::json::to_bson(nlohmann::json::parse(lines.begin() + static_cast<std::ptrdiff_t>(start),
                                                             lines.begin() + static_cast<std::ptrdiff_t>(end)));
    out.append(reinterpret_cast<const char*>(doc.data()), doc.size());
    start = end + 1;
  }
  return out;
}

template <typename F>
double seconds(F&& f) {
  auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  long ops = argc > 1 ? std::atol(argv[1]) : 200000;
  int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  auto records = download_ops(ops);
  std::string lines = encode(records, false);
  std::string streamed;
  powersync::protocol::append_bson_documents(streamed, lines);
  // Sanity: the whole output equals the previous encoder's, modulo key order (nlohmann::json sorts keys).
  bool same = streamed.size() == tree_encode(lines).size();
  uint32_t first_size = 0;
  for (int i = 3; i >= 0; --i) first_size = (first_size << 8) | static_cast<unsigned char>(streamed[static_cast<size_t>(i)]);
  same = same && encode(records, true) == streamed && nlohmann::json::from_bson(streamed.substr(0, first_size)) == nlohmann::json::parse(lines.substr(0, lines.find('\n')));
  std::printf("%ld ops, %.1f MB NDJSON, %.1f MB BSON (same size as before, first document decodes to the first line: %s)\n", ops, lines.size() / 1e6, streamed.size() / 1e6,
              same ? "yes" : "no");
  double best_tree = 1e9, best_stream = 1e9, best_direct = 1e9, best_ndjson = 1e9;
  for (int r = 0; r < rounds; ++r) {
    std::string a, b, c, d;
    double n = seconds([&] { d = encode(records, false); });
    double t = seconds([&] { a = tree_encode(d); });
    double s = seconds([&] { powersync::protocol::append_bson_documents(b, d); });
    double x = seconds([&] { c = encode(records, true); });
    best_ndjson = std::min(best_ndjson, n);
    best_tree = std::min(best_tree, t);
    best_stream = std::min(best_stream, s);
    best_direct = std::min(best_direct, x);
    std::printf("round %d: NDJSON %.0f ops/s; BSON: tree (NDJSON + parse + to_bson) %.0f, streaming re-encode %.0f, "
                "direct %.0f ops/s\n", r + 1, ops / n, ops / (n + t), ops / (n + s), ops / x);
  }
  std::printf("best: NDJSON %.0f ops/s; BSON tree %.0f, streaming %.0f, direct %.0f ops/s; direct/tree %.1fx, "
              "direct/NDJSON %.2f\n", ops / best_ndjson, ops / (best_ndjson + best_tree), ops / (best_ndjson + best_stream),
              ops / best_direct, (best_ndjson + best_tree) / best_direct, best_ndjson / best_direct);
}
