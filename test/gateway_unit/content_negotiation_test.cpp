// Content negotiation of /sync/stream (spec §1.3): BSON only for clients that name it with a
// higher q-value than NDJSON; wildcards and absent headers mean NDJSON.
#include <gtest/gtest.h>

#include "powersync/gateway/sync_session.h"

using powersync::gateway::prefers_bson;

TEST(ContentNegotiation, BsonWhenPreferred) {
  EXPECT_TRUE(prefers_bson("application/vnd.powersync.bson-stream;q=0.9,application/x-ndjson;q=0.8"));  // JS SDK
  EXPECT_TRUE(prefers_bson("application/vnd.powersync.bson-stream"));
  EXPECT_TRUE(prefers_bson("Application/Vnd.PowerSync.BSON-Stream ; q=1, */*;q=0.1"));
}

TEST(ContentNegotiation, NdjsonOtherwise) {
  EXPECT_FALSE(prefers_bson(""));
  EXPECT_FALSE(prefers_bson("*/*"));
  EXPECT_FALSE(prefers_bson("application/x-ndjson"));
  EXPECT_FALSE(prefers_bson("application/x-ndjson;q=1, application/vnd.powersync.bson-stream;q=0.5"));
  EXPECT_FALSE(prefers_bson("application/vnd.powersync.bson-stream;q=0"));
  EXPECT_FALSE(prefers_bson("application/vnd.powersync.bson-stream;q=0.5, application/*"));
  EXPECT_FALSE(prefers_bson(",,;;q=,garbage"));
}
