// Benchmark of BSON sync streams' encoding (gateway --bson-streams): the NDJSON sync lines of a
// 200,000-op download (1,000-op data lines of ~300-byte rows, as in gateway_bench.sh) re-encoded as
// BSON documents, by the streaming SAX encoder the gateway uses and, side by side in the same run,
// by the previous per-line nlohmann::json::to_bson(json::parse(line)). Prints ops/s and the ratio.
//   bson_lines [ops=200000] [rounds=3]
// The gateway's encoder is compiled into this program directly: bench programs link only the core
// library (see the Makefile), and this file needs no Postgres or network.
#include "../../src/gateway/bson_lines.cpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "powersync/protocol/sync_lines.h"

namespace {

std::string download_lines(long ops) {
  using namespace powersync::protocol;
  std::vector<OpRecord> page;
  std::string lines;
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
    page.push_back(std::move(op));
    if (page.size() == 1000 || i == ops) {
      append_data_line(lines, "1#mine[\"big\"]", page.front().op_id - 1, i != ops, page, 0, page.size(), true);
      page.clear();
    }
  }
  return lines;
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
  std::string lines = download_lines(ops);
  std::string streamed;
  powersync::gateway::append_bson_documents(streamed, lines);
  // Sanity: the whole output equals the previous encoder's, modulo key order (nlohmann::json sorts keys).
  bool same = streamed.size() == tree_encode(lines).size();
  uint32_t first_size = 0;
  for (int i = 3; i >= 0; --i) first_size = (first_size << 8) | static_cast<unsigned char>(streamed[static_cast<size_t>(i)]);
  same = same && nlohmann::json::from_bson(streamed.substr(0, first_size)) == nlohmann::json::parse(lines.substr(0, lines.find('\n')));
  std::printf("%ld ops, %.1f MB NDJSON, %.1f MB BSON (same size as before, first document decodes to the first line: %s)\n", ops, lines.size() / 1e6, streamed.size() / 1e6,
              same ? "yes" : "no");
  double best_tree = 1e9, best_stream = 1e9;
  for (int r = 0; r < rounds; ++r) {
    std::string a, b;
    double t = seconds([&] { a = tree_encode(lines); });
    double s = seconds([&] { powersync::gateway::append_bson_documents(b, lines); });
    best_tree = std::min(best_tree, t);
    best_stream = std::min(best_stream, s);
    std::printf("round %d: tree (parse + to_bson) %.3f s = %.0f ops/s; streaming %.3f s = %.0f ops/s\n", r + 1, t,
                ops / t, s, ops / s);
  }
  std::printf("best: tree %.0f ops/s, streaming %.0f ops/s, ratio streaming/tree %.2f\n", ops / best_tree,
              ops / best_stream, best_tree / best_stream);
}
