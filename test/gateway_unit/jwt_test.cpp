// JWT verification: every supported algorithm with keys generated here by OpenSSL, and every
// rejection class (alg none, algorithm confusion, bad signature, garbage, claims).
#include <gtest/gtest.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include <ctime>

#include "powersync/error.h"
#include "powersync/gateway/jwt.h"

using namespace powersync::gateway;
using json = nlohmann::json;

namespace {

std::string b64(const std::string& s) { return base64url_encode(s); }

std::string bn_bytes(EVP_PKEY* k, const char* name, int pad = 0) {
  BIGNUM* bn = nullptr;
  EVP_PKEY_get_bn_param(k, name, &bn);
  std::string out(pad ? pad : BN_num_bytes(bn), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
  BN_free(bn);
  return out;
}

// A private key generated for the test plus its public JWK.
struct TestKey {
  std::string alg;
  std::string secret;  // HS*
  EVP_PKEY* pkey = nullptr;
  json jwk;
  ~TestKey() { EVP_PKEY_free(pkey); }
};

std::unique_ptr<TestKey> make_key(const std::string& alg, const std::string& kid = "") {
  auto k = std::make_unique<TestKey>();
  k->alg = alg;
  if (alg[0] == 'H') {
    k->secret = "secret-for-" + alg + "-0123456789abcdef";
    k->jwk = {{"kty", "oct"}, {"k", b64(k->secret)}};
  } else if (alg[0] == 'R') {
    k->pkey = EVP_RSA_gen(2048);
    k->jwk = {{"kty", "RSA"}, {"n", b64(bn_bytes(k->pkey, OSSL_PKEY_PARAM_RSA_N))}, {"e", b64(bn_bytes(k->pkey, OSSL_PKEY_PARAM_RSA_E))}};
  } else if (alg[0] == 'E' && alg != "EdDSA") {
    const char* curve = alg == "ES256" ? "P-256" : alg == "ES384" ? "P-384" : "P-521";
    const char* group = alg == "ES256" ? "P-256" : alg == "ES384" ? "P-384" : "P-521";
    int bytes = alg == "ES256" ? 32 : alg == "ES384" ? 48 : 66;
    k->pkey = EVP_EC_gen(group);
    k->jwk = {{"kty", "EC"}, {"crv", curve}, {"x", b64(bn_bytes(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, bytes))},
              {"y", b64(bn_bytes(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, bytes))}};
  } else {
    k->pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    unsigned char pub[32];
    size_t len = sizeof pub;
    EVP_PKEY_get_raw_public_key(k->pkey, pub, &len);
    k->jwk = {{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", b64(std::string(reinterpret_cast<char*>(pub), len))}};
  }
  if (!kid.empty()) k->jwk["kid"] = kid;
  return k;
}

const EVP_MD* md_for(const std::string& alg) {
  if (alg == "EdDSA") return nullptr;
  std::string bits = alg.substr(2);
  return bits == "256" ? EVP_sha256() : bits == "384" ? EVP_sha384() : EVP_sha512();
}

std::string sign(const TestKey& k, const std::string& input, const std::string& alg) {
  if (alg[0] == 'H') {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(md_for(alg), k.secret.data(), static_cast<int>(k.secret.size()), reinterpret_cast<const unsigned char*>(input.data()),
         input.size(), mac, &len);
    return std::string(reinterpret_cast<char*>(mac), len);
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestSignInit(ctx, nullptr, md_for(alg), nullptr, k.pkey);
  size_t len = 0;
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, reinterpret_cast<const unsigned char*>(input.data()), input.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  if (alg[0] == 'E' && alg != "EdDSA") {  // DER -> raw r||s as JWS wants
    int bytes = alg == "ES256" ? 32 : alg == "ES384" ? 48 : 66;
    const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    std::string raw(2 * bytes, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), bytes);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data()) + bytes, bytes);
    ECDSA_SIG_free(es);
    return raw;
  }
  return sig;
}

int64_t now() { return static_cast<int64_t>(std::time(nullptr)); }

json good_claims() { return {{"sub", "user-1"}, {"aud", "powersync"}, {"iat", now()}, {"exp", now() + 300}}; }

std::string make_token(const TestKey& k, json claims = good_claims(), json header = json::object(), std::string alg = "") {
  if (alg.empty()) alg = k.alg;
  if (!header.contains("alg")) header["alg"] = alg;
  if (k.jwk.contains("kid") && !header.contains("kid")) header["kid"] = k.jwk["kid"];
  std::string input = b64(header.dump()) + "." + b64(claims.dump());
  return input + "." + b64(sign(k, input, alg));
}

JwtPolicy policy() {
  JwtPolicy p;
  p.audiences = {"powersync", "other"};
  return p;
}

JwksKeySet keyset(std::initializer_list<const TestKey*> keys) {
  json doc = {{"keys", json::array()}};
  for (auto* k : keys) doc["keys"].push_back(k->jwk);
  return JwksKeySet::parse(doc.dump());
}

std::string verify_code(const JwksKeySet& set, const std::string& token) {
  VerifiedToken v;
  AuthError e;
  return set.verify(token, policy(), now(), v, e) ? "ok" : e.code;
}

}  // namespace

class JwtAlgorithms : public ::testing::TestWithParam<std::string> {};

TEST_P(JwtAlgorithms, ValidTokenVerifiesAndYieldsClaims) {
  auto k = make_key(GetParam());
  auto set = keyset({k.get()});
  VerifiedToken v;
  AuthError e;
  ASSERT_TRUE(set.verify(make_token(*k), policy(), now(), v, e)) << e.code << " " << e.message;
  EXPECT_EQ(v.user_id, "user-1");
  EXPECT_EQ(v.claims["aud"], "powersync");
  EXPECT_EQ(json::parse(v.claims_json)["sub"], "user-1");
}

TEST_P(JwtAlgorithms, TamperedPayloadIsRejected) {
  auto k = make_key(GetParam());
  auto set = keyset({k.get()});
  std::string t = make_token(*k);
  size_t d1 = t.find('.'), d2 = t.find('.', d1 + 1);
  json other = good_claims();
  other["sub"] = "admin";
  std::string forged = t.substr(0, d1 + 1) + b64(other.dump()) + t.substr(d2);
  EXPECT_EQ(verify_code(set, forged), "PSYNC_S2102");
}

TEST_P(JwtAlgorithms, SignatureFromAnotherKeyIsRejected) {
  auto k = make_key(GetParam());
  auto impostor = make_key(GetParam());
  impostor->secret += "x";
  auto set = keyset({k.get()});
  EXPECT_EQ(verify_code(set, make_token(*impostor)), "PSYNC_S2102");
}

INSTANTIATE_TEST_SUITE_P(All, JwtAlgorithms,
                         ::testing::Values("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384",
                                           "ES512", "EdDSA"));

TEST(Jwt, AlgNoneIsRejected) {
  auto k = make_key("HS256");
  auto set = keyset({k.get()});
  std::string t = b64(json{{"alg", "none"}}.dump()) + "." + b64(good_claims().dump()) + ".";
  EXPECT_EQ(verify_code(set, t), "PSYNC_S2101");
}

TEST(Jwt, HmacTokenSignedWithRsaPublicKeyIsRejected) {
  // Algorithm confusion: an attacker HMACs with the RSA public key material as the secret.
  auto rsa = make_key("RS256");
  auto set = keyset({rsa.get()});
  TestKey fake;
  fake.alg = "HS256";
  fake.secret = rsa->jwk.dump();
  EXPECT_EQ(verify_code(set, make_token(fake)), "PSYNC_S2102");
  fake.secret = rsa->jwk["n"].get<std::string>();
  EXPECT_EQ(verify_code(set, make_token(fake)), "PSYNC_S2102");
}

TEST(Jwt, EcTokenWithRsaAlgIsRejected) {
  auto ec = make_key("ES256");
  auto set = keyset({ec.get()});
  EXPECT_EQ(verify_code(set, make_token(*ec, good_claims(), json::object(), "ES384")), "PSYNC_S2102");
}

TEST(Jwt, KidSelectsKeyAndItsAlgMustMatch) {
  auto a = make_key("HS256", "a");
  auto b = make_key("RS256", "b");
  auto set = keyset({a.get(), b.get()});
  EXPECT_EQ(verify_code(set, make_token(*a)), "ok");
  EXPECT_EQ(verify_code(set, make_token(*b)), "ok");
  // A token naming kid "b" but HMAC-signed: kid b is RSA, so no suitable key.
  EXPECT_EQ(verify_code(set, make_token(*a, good_claims(), json{{"kid", "b"}})), "PSYNC_S2102");
  // Unknown kid and no wildcard key.
  EXPECT_EQ(verify_code(set, make_token(*a, good_claims(), json{{"kid", "zzz"}})), "PSYNC_S2102");
}

TEST(Jwt, KeyWithoutKidIsTriedForAnyToken) {
  auto a = make_key("HS256");
  auto set = keyset({a.get()});
  EXPECT_EQ(verify_code(set, make_token(*a, good_claims(), json{{"kid", "whatever"}})), "ok");
}

TEST(Jwt, JwkAlgRestrictsAlgorithm) {
  auto a = make_key("HS256");
  a->jwk["alg"] = "HS512";
  auto set = keyset({a.get()});
  EXPECT_EQ(verify_code(set, make_token(*a)), "PSYNC_S2102");
}

TEST(Jwt, ClaimChecks) {
  auto k = make_key("HS256");
  auto set = keyset({k.get()});
  auto with = [&](std::function<void(json&)> f) {
    json c = good_claims();
    f(c);
    return verify_code(set, make_token(*k, c));
  };
  EXPECT_EQ(with([](json& c) { c["exp"] = now() - 61; c["iat"] = now() - 100; }), "PSYNC_S2103");
  EXPECT_EQ(with([](json& c) { c["exp"] = now() - 30; c["iat"] = now() - 100; }), "ok");  // 60 s tolerance
  EXPECT_EQ(with([](json& c) { c["iat"] = now() + 120; c["exp"] = now() + 200; }), "PSYNC_S2101");
  EXPECT_EQ(with([](json& c) { c["exp"] = now() + 86400 + 10; }), "PSYNC_S2104");
  EXPECT_EQ(with([](json& c) { c.erase("exp"); }), "PSYNC_S2101");
  EXPECT_EQ(with([](json& c) { c.erase("iat"); }), "PSYNC_S2101");
  EXPECT_EQ(with([](json& c) { c["exp"] = "soon"; }), "PSYNC_S2101");
  EXPECT_EQ(with([](json& c) { c.erase("sub"); }), "PSYNC_S2101");
  EXPECT_EQ(with([](json& c) { c.erase("aud"); }), "PSYNC_S2105");
  EXPECT_EQ(with([](json& c) { c["aud"] = "elsewhere"; }), "PSYNC_S2105");
  EXPECT_EQ(with([](json& c) { c["aud"] = json::array({"x", "other"}); }), "ok");
  EXPECT_EQ(with([](json& c) { c["parameters"] = json::array({1}); }), "PSYNC_S2101");
  EXPECT_EQ(with([](json& c) { c["parameters"] = {{"team", "t1"}}; }), "ok");
  EXPECT_EQ(with([](json& c) { c["nbf"] = now() + 500; }), "PSYNC_S2101");
}

TEST(Jwt, NumericSubBecomesItsJsonText) {
  auto k = make_key("HS256");
  auto set = keyset({k.get()});
  json c = good_claims();
  c["sub"] = 42;
  VerifiedToken v;
  AuthError e;
  ASSERT_TRUE(set.verify(make_token(*k, c), policy(), now(), v, e));
  EXPECT_EQ(v.user_id, "42");
}

TEST(Jwt, GarbageNeverCrashes) {
  auto k = make_key("ES256");
  auto set = keyset({k.get()});
  std::string good = make_token(*k);
  std::vector<std::string> garbage = {"", ".", "..", "...", "a.b.c", "a.b", "!!!.###.$$$", good + ".x", good.substr(0, good.size() - 5),
                                      b64("[]") + "." + b64("{}") + ".", b64("{\"alg\":5}") + "." + b64("{}") + ".",
                                      b64("{\"alg\":\"ES256\"}") + "." + b64("not json") + "." + b64("sig"),
                                      b64("{\"alg\":\"ES256\"}") + "." + b64("{}") + "." + b64(std::string(64, '\0')),
                                      b64("{\"alg\":\"ES256\"}") + "." + b64("{}") + "." + b64(std::string(7, 'x')),
                                      std::string(5000, 'A') + "." + std::string(3, 'B') + ".C"};
  for (size_t i = 0; i < good.size(); i += 7) {
    std::string t = good;
    t[i] = t[i] == 'A' ? 'B' : 'A';
    garbage.push_back(t);
  }
  for (const auto& t : garbage) EXPECT_NE(verify_code(set, t), "ok") << t;
}

TEST(Jwt, AuthorizationHeaderForms) {
  std::string t;
  EXPECT_TRUE(token_from_authorization("Token abc.def.ghi", t));
  EXPECT_EQ(t, "abc.def.ghi");
  EXPECT_TRUE(token_from_authorization("Bearer x", t));
  EXPECT_FALSE(token_from_authorization("Basic x", t));
  EXPECT_FALSE(token_from_authorization("Token ", t));
  EXPECT_FALSE(token_from_authorization("Token a b", t));
  EXPECT_FALSE(token_from_authorization("", t));
}

TEST(Jwt, BadJwksDocumentsAreConfigErrors) {
  for (const char* bad : {"", "{}", "{\"keys\":{}}", "{\"keys\":[1]}", "{\"keys\":[{\"kty\":\"oct\"}]}",
                          "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQ\"}]}", "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-999\",\"x\":\"AQ\",\"y\":\"AQ\"}]}",
                          "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AQ\",\"y\":\"AQ\"}]}",
                          "{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\",\"alg\":\"RS256\"}]}", "{\"keys\":[{\"kty\":\"XYZ\"}]}"}) {
    EXPECT_THROW(JwksKeySet::parse(bad), powersync::Error) << bad;
  }
}

TEST(Jwt, Base64UrlRoundTrip) {
  std::string out;
  for (std::string s : {"", "a", "ab", "abc", "abcd", "\xff\xfe\xfd"}) {
    ASSERT_TRUE(base64url_decode(base64url_encode(s), out));
    EXPECT_EQ(out, s);
  }
  EXPECT_FALSE(base64url_decode("a+b/", out));
  EXPECT_FALSE(base64url_decode("abcde", out));
}
