// JWT verification with OpenSSL 3 (EVP): JWKS keys become EVP_PKEYs once at load time; each
// request checks the signature with the key the token's kid/alg select, then the claims.
#include "powersync/gateway/jwt.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>

#include <fstream>
#include <sstream>

#include "powersync/error.h"

namespace powersync::gateway {

namespace {

enum class Family { Hmac, Rsa, Ec, EdDsa };

struct Algorithm {
  const char* name;
  Family family;
  const EVP_MD* (*md)();
  const char* curve;  // JWK crv for EC
  size_t coordinate_bytes;
};

const Algorithm kAlgorithms[] = {
    {"HS256", Family::Hmac, EVP_sha256, nullptr, 0}, {"HS384", Family::Hmac, EVP_sha384, nullptr, 0},
    {"HS512", Family::Hmac, EVP_sha512, nullptr, 0}, {"RS256", Family::Rsa, EVP_sha256, nullptr, 0},
    {"RS384", Family::Rsa, EVP_sha384, nullptr, 0},  {"RS512", Family::Rsa, EVP_sha512, nullptr, 0},
    {"ES256", Family::Ec, EVP_sha256, "P-256", 32},  {"ES384", Family::Ec, EVP_sha384, "P-384", 48},
    {"ES512", Family::Ec, EVP_sha512, "P-521", 66},  {"EdDSA", Family::EdDsa, nullptr, nullptr, 0},
};

const Algorithm* find_algorithm(const std::string& name) {
  for (const auto& a : kAlgorithms)
    if (name == a.name) return &a;
  return nullptr;
}

struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

std::string json_string_field(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string required_b64(const nlohmann::json& jwk, const char* field, const std::string& where) {
  std::string raw;
  std::string text = json_string_field(jwk, field);
  if (text.empty() || !base64url_decode(text, raw) || raw.empty())
    throw invalid_input(where + ": field \"" + field + "\" must be a non-empty base64url string");
  return raw;
}

PkeyPtr pkey_from_params(const char* type, OSSL_PARAM_BLD* bld, const std::string& where) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* pkey = nullptr;
  bool ok = params && ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
            EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  ERR_clear_error();
  if (!ok) throw invalid_input(where + ": OpenSSL rejected the key material");
  return PkeyPtr(pkey);
}

PkeyPtr rsa_public_key(const nlohmann::json& jwk, const std::string& where) {
  std::string n = required_b64(jwk, "n", where), e = required_b64(jwk, "e", where);
  BIGNUM* bn_n = BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), static_cast<int>(n.size()), nullptr);
  BIGNUM* bn_e = BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), static_cast<int>(e.size()), nullptr);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n);
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e);
  PkeyPtr key;
  try {
    key = pkey_from_params("RSA", bld, where);
  } catch (...) {
    OSSL_PARAM_BLD_free(bld), BN_free(bn_n), BN_free(bn_e);
    throw;
  }
  OSSL_PARAM_BLD_free(bld), BN_free(bn_n), BN_free(bn_e);
  return key;
}

PkeyPtr ec_public_key(const nlohmann::json& jwk, const std::string& crv, const std::string& where) {
  const char* group = crv == "P-256" ? "prime256v1" : crv == "P-384" ? "secp384r1" : crv == "P-521" ? "secp521r1" : nullptr;
  if (!group) throw invalid_input(where + ": unsupported EC curve \"" + crv + "\" (use P-256, P-384 or P-521)");
  std::string point = "\x04" + required_b64(jwk, "x", where) + required_b64(jwk, "y", where);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
  OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
  PkeyPtr key;
  try {
    key = pkey_from_params("EC", bld, where);
  } catch (...) {
    OSSL_PARAM_BLD_free(bld);
    throw;
  }
  OSSL_PARAM_BLD_free(bld);
  return key;
}

// JWS carries ECDSA signatures as raw r||s; OpenSSL verifies DER.
bool ecdsa_raw_to_der(std::string_view raw, size_t coordinate_bytes, std::string& der) {
  if (raw.size() != 2 * coordinate_bytes) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(p, static_cast<int>(coordinate_bytes), nullptr);
  BIGNUM* s = BN_bin2bn(p + coordinate_bytes, static_cast<int>(coordinate_bytes), nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
    BN_free(r), BN_free(s), ECDSA_SIG_free(sig);
    return false;
  }
  int len = i2d_ECDSA_SIG(sig, nullptr);
  bool ok = len > 0;
  if (ok) {
    der.resize(static_cast<size_t>(len));
    auto* out = reinterpret_cast<unsigned char*>(der.data());
    ok = i2d_ECDSA_SIG(sig, &out) == len;
  }
  ECDSA_SIG_free(sig);
  return ok;
}

bool digest_verify(EVP_PKEY* key, const EVP_MD* md, std::string_view data, std::string_view sig) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestVerifyInit(ctx, nullptr, md, nullptr, key) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
  EVP_MD_CTX_free(ctx);
  ERR_clear_error();
  return ok;
}

bool numeric_claim(const nlohmann::json& claims, const char* name, int64_t& out) {
  auto it = claims.find(name);
  if (it == claims.end() || !it->is_number()) return false;
  out = it->is_number_float() ? static_cast<int64_t>(it->get<double>()) : it->get<int64_t>();
  return true;
}

}  // namespace

struct JwksKeySet::Key {
  std::string kid;
  std::string alg;  // optional restriction from the JWK
  Family family;
  std::string crv;
  std::string secret;  // HMAC
  PkeyPtr pkey;        // RSA / EC / Ed25519
};

JwksKeySet::JwksKeySet() = default;
JwksKeySet::JwksKeySet(JwksKeySet&&) noexcept = default;
JwksKeySet& JwksKeySet::operator=(JwksKeySet&&) noexcept = default;
JwksKeySet::~JwksKeySet() = default;
size_t JwksKeySet::size() const { return keys_.size(); }

JwksKeySet JwksKeySet::parse(std::string_view jwks_json) {
  nlohmann::json doc = nlohmann::json::parse(jwks_json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array())
    throw invalid_input("the JWKS document must be a JSON object with a \"keys\" array");
  JwksKeySet set;
  for (size_t i = 0; i < doc["keys"].size(); ++i) {
    const auto& jwk = doc["keys"][i];
    std::string where = "JWKS key " + std::to_string(i);
    if (!jwk.is_object()) throw invalid_input(where + " is not a JSON object");
    auto key = std::make_unique<Key>();
    key->kid = json_string_field(jwk, "kid");
    key->alg = json_string_field(jwk, "alg");
    if (!key->kid.empty()) where += " (kid \"" + key->kid + "\")";
    std::string kty = json_string_field(jwk, "kty");
    if (kty == "oct") {
      key->family = Family::Hmac;
      key->secret = required_b64(jwk, "k", where);
    } else if (kty == "RSA") {
      key->family = Family::Rsa;
      key->pkey = rsa_public_key(jwk, where);
    } else if (kty == "EC") {
      key->family = Family::Ec;
      key->crv = json_string_field(jwk, "crv");
      key->pkey = ec_public_key(jwk, key->crv, where);
    } else if (kty == "OKP" && json_string_field(jwk, "crv") == "Ed25519") {
      key->family = Family::EdDsa;
      std::string x = required_b64(jwk, "x", where);
      key->pkey.reset(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                                  reinterpret_cast<const unsigned char*>(x.data()), x.size()));
      ERR_clear_error();
      if (!key->pkey) throw invalid_input(where + ": invalid Ed25519 public key");
    } else {
      throw invalid_input(where + ": unsupported key type \"" + kty + "\"", {},
                          "use kty oct (HS256/384/512), RSA (RS*), EC (ES*) or OKP/Ed25519 (EdDSA)");
    }
    if (!key->alg.empty()) {
      const Algorithm* a = find_algorithm(key->alg);
      if (!a || a->family != key->family) throw invalid_input(where + ": alg \"" + key->alg + "\" does not fit its kty");
    }
    set.keys_.push_back(std::move(key));
  }
  return set;
}

JwksKeySet JwksKeySet::load_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw invalid_input("cannot read the JWKS file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return parse(ss.str());
  } catch (const Error& e) {
    throw invalid_input(path + ": " + e.what(), e.detail(), e.hint());
  }
}

bool JwksKeySet::verify(std::string_view token, const JwtPolicy& policy, int64_t now, VerifiedToken& out,
                        AuthError& error) const {
  auto reject = [&](const char* code, std::string message) {
    error = AuthError{code, std::move(message)};
    return false;
  };
  size_t d1 = token.find('.');
  size_t d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
    return reject("PSYNC_S2101", "The token is not a JWT (expected three base64url parts separated by dots)");
  std::string header_raw, payload_raw, signature;
  if (!base64url_decode(token.substr(0, d1), header_raw) || !base64url_decode(token.substr(d1 + 1, d2 - d1 - 1), payload_raw) ||
      !base64url_decode(token.substr(d2 + 1), signature))
    return reject("PSYNC_S2101", "The token is not valid base64url");
  auto header = nlohmann::json::parse(header_raw, nullptr, false);
  auto claims = nlohmann::json::parse(payload_raw, nullptr, false);
  if (header.is_discarded() || !header.is_object() || claims.is_discarded() || !claims.is_object())
    return reject("PSYNC_S2101", "The token header and payload must be JSON objects");

  std::string alg_name = json_string_field(header, "alg");
  const Algorithm* alg = find_algorithm(alg_name);
  if (!alg) return reject("PSYNC_S2101", "Unsupported token algorithm \"" + alg_name + "\"");
  std::string kid = json_string_field(header, "kid");

  // A key with the token's kid is the only candidate; otherwise every key without a kid.
  std::vector<const Key*> candidates;
  for (const auto& k : keys_)
    if (!kid.empty() && k->kid == kid) candidates.push_back(k.get());
  if (candidates.empty())
    for (const auto& k : keys_)
      if (k->kid.empty()) candidates.push_back(k.get());
  std::string_view signed_part = token.substr(0, d2);
  bool verified = false, any_suitable = false;
  for (const Key* k : candidates) {
    // Algorithm confusion guard: the token's alg must fit the key's type (and its alg, if set).
    if (k->family != alg->family || (!k->alg.empty() && k->alg != alg->name)) continue;
    if (alg->family == Family::Ec && k->crv != alg->curve) continue;
    any_suitable = true;
    if (alg->family == Family::Hmac) {
      unsigned char mac[EVP_MAX_MD_SIZE];
      unsigned int mac_len = 0;
      HMAC(alg->md(), k->secret.data(), static_cast<int>(k->secret.size()),
           reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), mac, &mac_len);
      verified = mac_len == signature.size() && CRYPTO_memcmp(mac, signature.data(), mac_len) == 0;
    } else if (alg->family == Family::Ec) {
      std::string der;
      verified = ecdsa_raw_to_der(signature, alg->coordinate_bytes, der) && digest_verify(k->pkey.get(), alg->md(), signed_part, der);
    } else {
      verified = digest_verify(k->pkey.get(), alg->md ? alg->md() : nullptr, signed_part, signature);
    }
    if (verified) break;
  }
  if (!any_suitable)
    return reject("PSYNC_S2102", "No key matches the token (kid \"" + kid + "\", alg " + alg_name + ")");
  if (!verified) return reject("PSYNC_S2102", "The token signature does not verify");

  int64_t exp = 0, iat = 0, nbf = 0;
  if (!numeric_claim(claims, "exp", exp)) return reject("PSYNC_S2101", "The token has no numeric \"exp\" claim");
  if (!numeric_claim(claims, "iat", iat)) return reject("PSYNC_S2101", "The token has no numeric \"iat\" claim");
  int64_t tol = policy.clock_tolerance_seconds;
  if (now > exp + tol) return reject("PSYNC_S2103", "The token has expired");
  if (iat > now + tol) return reject("PSYNC_S2101", "The token is issued in the future (iat)");
  if (numeric_claim(claims, "nbf", nbf) && nbf > now + tol) return reject("PSYNC_S2101", "The token is not valid yet (nbf)");
  if (exp - iat > policy.max_lifetime_seconds)
    return reject("PSYNC_S2104", "The token lifetime (exp - iat) exceeds " + std::to_string(policy.max_lifetime_seconds) + " s");
  auto sub = claims.find("sub");
  if (sub == claims.end() || sub->is_null()) return reject("PSYNC_S2101", "The token has no \"sub\" claim");
  bool aud_ok = false;
  if (auto aud = claims.find("aud"); aud != claims.end()) {
    auto matches = [&](const nlohmann::json& v) {
      if (!v.is_string()) return false;
      for (const auto& a : policy.audiences)
        if (v.get_ref<const std::string&>() == a) return true;
      return false;
    };
    if (aud->is_array()) {
      for (const auto& v : *aud) aud_ok = aud_ok || matches(v);
    } else {
      aud_ok = matches(*aud);
    }
  }
  if (!aud_ok) return reject("PSYNC_S2105", "The token's \"aud\" claim does not name an accepted audience");
  if (auto p = claims.find("parameters"); p != claims.end() && !p->is_object())
    return reject("PSYNC_S2101", "The token's \"parameters\" claim must be a JSON object");

  out.user_id = sub->is_string() ? sub->get<std::string>() : sub->dump();
  out.expires_at = exp;
  out.claims_json = claims.dump();
  out.claims = std::move(claims);
  return true;
}

bool token_from_authorization(std::string_view header, std::string& token) {
  std::string_view rest;
  if (header.substr(0, 6) == "Token ") rest = header.substr(6);
  else if (header.substr(0, 7) == "Bearer ") rest = header.substr(7);
  else return false;
  if (rest.empty() || rest.find_first_of(" \t\r\n") != std::string_view::npos) return false;
  token.assign(rest);
  return true;
}

std::string base64url_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

bool base64url_decode(std::string_view text, std::string& out) {
  std::string b64(text);
  for (char& c : b64) {
    if (c == '+' || c == '/' || c == '=') return false;
    c = c == '-' ? '+' : c == '_' ? '/' : c;
  }
  if (b64.size() % 4 == 1) return false;
  size_t pad = (4 - b64.size() % 4) % 4;
  b64.append(pad, '=');
  out.assign(b64.size() / 4 * 3 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(b64.data()),
                          static_cast<int>(b64.size()));
  if (n < 0) return false;
  out.resize(static_cast<size_t>(n) - pad);
  return true;
}

}  // namespace powersync::gateway
