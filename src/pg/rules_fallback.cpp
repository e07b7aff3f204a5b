// TEMPORARY: weak stand-ins for the rules engine and op checksums until branch `rules` is merged.
// Real (strong) definitions from src/rules and src/protocol replace these at link time; this file is
// deleted by the merge commit that brings them in. The stand-in rules engine rejects every deploy.
#include <openssl/sha.h>

#include "powersync/error.h"
#include "powersync/protocol/checksum.h"
#include "powersync/rules/sync_rules.h"

#define PS_WEAK __attribute__((weak))

namespace powersync::protocol {
PS_WEAK uint32_t hash_checksum(std::string_view bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  return uint32_t(digest[0]) | uint32_t(digest[1]) << 8 | uint32_t(digest[2]) << 16 | uint32_t(digest[3]) << 24;
}
PS_WEAK uint32_t put_checksum(std::string_view type, std::string_view id, std::string_view data) {
  std::string s = "put.";
  s.append(type).append(".").append(id).append(".").append(data);
  return hash_checksum(s);
}
PS_WEAK uint32_t remove_checksum(std::string_view subkey) {
  std::string s = "delete.";
  s.append(subkey);
  return hash_checksum(s);
}
}  // namespace powersync::protocol

namespace powersync::rules {
struct SyncRules::Impl {};
PS_WEAK std::unique_ptr<SyncRules> SyncRules::parse(std::string_view, const ParseOptions&, std::vector<RuleIssue>& issues) {
  issues.push_back({RuleIssue::Severity::Error, "the sync rules engine is not built into this library yet", 0, 0, {}});
  return nullptr;
}
PS_WEAK SyncRules::~SyncRules() = default;
PS_WEAK const std::vector<TablePattern>& SyncRules::source_tables() const { static std::vector<TablePattern> none; return none; }
PS_WEAK bool SyncRules::is_data_table(const SourceTable&) const { return false; }
PS_WEAK bool SyncRules::is_parameter_table(const SourceTable&) const { return false; }
PS_WEAK RowEvaluation SyncRules::evaluate_row(const SourceTable&, const Row&) const { return {}; }
PS_WEAK ParameterEvaluation SyncRules::evaluate_parameter_row(const SourceTable&, const Row&) const { return {}; }
PS_WEAK bool TablePattern::matches(std::string_view, std::string_view) const { return false; }
}  // namespace powersync::rules
