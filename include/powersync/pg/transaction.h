// A worker transaction with an SPI connection and an active snapshot. On an exception nothing is
// undone here: the worker's error handler aborts the transaction (which also closes SPI).
#pragma once

extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "utils/snapmgr.h"
}

#include "powersync/pg/boundary.h"

namespace powersync::pg {

class Transaction {
 public:
  Transaction() {
    pg_call([] {
      SetCurrentStatementStartTimestamp();
      StartTransactionCommand();
      SPI_connect();
      PushActiveSnapshot(GetTransactionSnapshot());
    });
  }
  void commit() {
    pg_call([] {
      SPI_finish();
      PopActiveSnapshot();
      CommitTransactionCommand();
    });
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
};

}  // namespace powersync::pg
