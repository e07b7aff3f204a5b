// JWT verification for client requests (spec §1.1): keys from a JWKS document, HS/RS/ES (and
// EdDSA) signatures checked with OpenSSL, claims checked like the reference service.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace powersync::gateway {

// A rejected token: an HTTP 401 with a PSYNC_S21xx code and a message for the user.
struct AuthError {
  std::string code;
  std::string message;
};

struct VerifiedToken {
  nlohmann::json claims;   // the whole payload
  std::string claims_json; // the payload as compact JSON (handed to Postgres)
  std::string user_id;     // `sub` as a string (write-checkpoint key)
  int64_t expires_at = 0;  // `exp`, seconds since the epoch
};

struct JwtPolicy {
  std::vector<std::string> audiences;  // the token's aud must name one of these
  int64_t max_lifetime_seconds = 86400;
  int64_t clock_tolerance_seconds = 60;
};

class JwksKeySet {
 public:
  // Parses a JWKS document ({"keys": [...]}); throws powersync::Error naming the bad key.
  static JwksKeySet parse(std::string_view jwks_json);
  static JwksKeySet load_file(const std::string& path);

  JwksKeySet();
  JwksKeySet(JwksKeySet&&) noexcept;
  JwksKeySet& operator=(JwksKeySet&&) noexcept;
  ~JwksKeySet();

  size_t size() const;

  // Verifies a compact JWS; on failure returns false and fills `error`.
  bool verify(std::string_view token, const JwtPolicy& policy, int64_t now, VerifiedToken& out,
              AuthError& error) const;

 private:
  struct Key;
  std::vector<std::unique_ptr<Key>> keys_;
};

// Extracts the token from an Authorization header value ("Token <jwt>" or "Bearer <jwt>").
// Returns false when the header does not have that shape.
bool token_from_authorization(std::string_view header, std::string& token);

// base64url without padding, exposed for tests and token minting tools.
std::string base64url_encode(std::string_view bytes);
bool base64url_decode(std::string_view text, std::string& out);

}  // namespace powersync::gateway
