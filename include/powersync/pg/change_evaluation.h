// The pure part of op generation: a row change's source keys and what the sync rules make of its new
// row (bucket rows with checksums, parameter lookups, row image). No Postgres: it runs on the worker's
// evaluation thread while the main thread does the Postgres work (see ChangePass in row_ops.cpp).
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "powersync/pg/replication.h"

namespace powersync::pg {

// Bytes of a pass's RowPuts: they live as long as the pass, so that a row's PUTs cost no allocation (and
// no free) of their own.
struct PutArena : ByteArena {
  PutArena() : ByteArena(64 * 1024) {}
};

// An evaluated row's subkey and its PUTs' JSON data and checksums, in one piece (in a PutArena, or owned
// when evaluated outside a pass). Layout: u16 subkey size | subkey | per PUT: u32 checksum | u32 size | data.
class RowPuts {
 public:
  struct Put {
    std::string_view data;
    uint32_t checksum;
  };
  // Reads the PUTs in the order they were added.
  class Cursor {
   public:
    explicit Cursor(const RowPuts& puts) : at_(puts.bytes().data() + puts.puts_at()) {}
    Put next() {
      uint32_t checksum, size;
      std::memcpy(&checksum, at_, 4);
      std::memcpy(&size, at_ + 4, 4);
      Put p{std::string_view(at_ + 8, size), checksum};
      at_ += 8 + size;
      return p;
    }

   private:
    const char* at_;
  };

  std::string_view subkey() const {
    std::string_view b = bytes();
    return b.empty() ? std::string_view() : b.substr(2, puts_at() - 2);
  }
  void assign(std::string_view bytes, PutArena* arena) {
    if (arena) arena_bytes_ = arena->copy(bytes);
    else owned_ = std::string(bytes);
  }

 private:
  std::string_view bytes() const { return arena_bytes_.empty() ? std::string_view(owned_) : arena_bytes_; }
  size_t puts_at() const {
    uint16_t n;
    std::memcpy(&n, bytes().data(), 2);
    return 2 + size_t{n};
  }
  std::string_view arena_bytes_;  // in the pass's PutArena
  std::string owned_;             // or here (evaluate_new_row)
};

struct ChangeEvaluation {
  Keys keys;
  // False when the new row has unchanged-TOAST columns: they are filled from the stored row image at
  // apply time, so the rules run then (evaluate_new_row on the main thread).
  bool evaluated = false;
  RowPuts puts;                       // subkey of keys.after; per PUT its JSON data and checksum
  wire::BucketRefList now;            // the (bucket, table, id) of every PUT, in evaluation order
  std::vector<std::string> lookups;   // distinct parameter lookups of the row
  std::vector<std::string> params;    // per lookup: JSON array text of its parameter objects
  std::string lookup_list;            // `lookups` as current_data stores them (wire::encode_strings)
  std::optional<std::string> image;   // row image kept for the next update's unchanged-TOAST columns
  std::vector<std::string> warnings;  // rule errors, logged by the main thread
};

// Calls f(const wire::BucketRefView&, std::string_view data, uint32_t checksum) for every PUT of `e`.
template <typename F>
void for_each_put(const ChangeEvaluation& e, F&& f) {
  RowPuts::Cursor puts(e.puts);
  wire::for_each_bucket_ref(e.now.bytes(), [&](const wire::BucketRefView& ref) {
    RowPuts::Put p = puts.next();
    f(ref, p.data, p.checksum);
  });
}

// Computes the change's keys for source table `t` and, unless the new row lacks unchanged-TOAST values,
// evaluates it. Reads only its arguments (t: id, identity and identity columns; c: relation and tuples).
// keys.merged is only filled for a new row with unchanged-TOAST values (the complete row otherwise is
// c.new_tuple).
// The PUTs' bytes go into `arena`, which must outlive `out`.
void evaluate_change(const rules::SyncRules& rules, const SourceTable& t, const RowChange& c, ChangeEvaluation& out,
                     PutArena& arena);

// Evaluates the complete new row in out.keys.merged into `out`.
void evaluate_new_row(const rules::SyncRules& rules, const SourceTable& t, const RelationInfo& rel,
                      ChangeEvaluation& out);

bool has_unchanged(const wire::Tuple& t);

}  // namespace powersync::pg
