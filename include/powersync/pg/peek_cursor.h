// Reads a replication round's decoded messages in slices through an SPI cursor, so that the worker holds
// a few thousand messages at a time instead of a whole (possibly multi-GB) transaction.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

extern "C" {
#include "postgres.h"
#include "executor/spi.h"
}

#include "powersync/pg/message_source.h"

namespace powersync::pg {

class PeekCursor : public MessageSource {
 public:
  // Opens pg_logical_slot_peek_binary_changes(slot, upto, limit, 'tables', patterns) as a cursor in the
  // current transaction. The function decodes into a tuplestore that spills to disk beyond work_mem.
  PeekCursor(const std::string& slot, uint64_t upto, int32_t limit, const std::string& patterns);
  ~PeekCursor() override = default;
  PeekCursor(const PeekCursor&) = delete;
  PeekCursor& operator=(const PeekCursor&) = delete;
  // The next message into `out`; false at the end.
  bool next(std::string& out) override;
  // Closes the cursor; call before the transaction ends (commit drops the portal itself).
  void close();
  uint64_t count() const override { return count_; }

 private:
  void fetch();
  Portal portal_ = nullptr;
  std::vector<std::string> slice_;
  size_t pos_ = 0;
  bool done_ = false;
  uint64_t count_ = 0;
};

}  // namespace powersync::pg
