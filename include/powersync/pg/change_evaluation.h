// The pure part of op generation: a row change's source keys and what the sync rules make of its new
// row (bucket rows with checksums, parameter lookups, row image). No Postgres: it runs on the worker's
// evaluation thread while the main thread does the Postgres work (see ChangePass in row_ops.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "powersync/pg/replication.h"

namespace powersync::pg {

struct ChangeEvaluation {
  Keys keys;
  // False when the new row has unchanged-TOAST columns: they are filled from the stored row image at
  // apply time, so the rules run then (evaluate_new_row on the main thread).
  bool evaluated = false;
  std::string subkey;                 // of keys.after
  wire::BucketRefList now;            // the (bucket, table, id) of every PUT, in evaluation order
  std::vector<std::string> data;      // per PUT: its JSON data
  std::vector<uint32_t> checksums;    // per PUT
  std::vector<std::string> lookups;   // distinct parameter lookups of the row
  std::vector<std::string> params;    // per lookup: JSON array text of its parameter objects
  std::string lookup_list;            // `lookups` as current_data stores them (wire::encode_strings)
  std::optional<std::string> image;   // row image kept for the next update's unchanged-TOAST columns
  std::vector<std::string> warnings;  // rule errors, logged by the main thread
};

// Computes the change's keys for source table `t` and, unless the new row lacks unchanged-TOAST values,
// evaluates it. Reads only its arguments (t: id, identity and identity columns; c: relation and tuples).
void evaluate_change(const rules::SyncRules& rules, const SourceTable& t, const RowChange& c, ChangeEvaluation& out);

// Evaluates the complete new row in out.keys.merged (its values are moved out) into `out`.
void evaluate_new_row(const rules::SyncRules& rules, const SourceTable& t, const RelationInfo& rel,
                      ChangeEvaluation& out);

bool has_unchanged(const wire::Tuple& t);

}  // namespace powersync::pg
