// Small conversions shared by the wraps. JS thread only.
#pragma once
#include <msquic.h>
#include <napi.h>

#include <string>

namespace nmq {

// Type tags: each wrap class tags its instances, so an argument is unwrapped only as its own class.
extern const napi_type_tag kConfigurationTag;
extern const napi_type_tag kListenerTag;
extern const napi_type_tag kConnectionTag;
extern const napi_type_tag kStreamTag;
void Tag(Napi::Env env, Napi::Value object, const napi_type_tag& tag);
bool HasTag(Napi::Env env, Napi::Value value, const napi_type_tag& tag);

// "127.0.0.1" / "::1" / "" (unspecified: every address) and a port into MsQuic's address.
bool ParseAddress(const std::string& ip, uint16_t port, QUIC_ADDR* out);
// { address, family: 'IPv4' | 'IPv6', port }, as node:net reports addresses.
Napi::Value AddressObject(Napi::Env env, const QUIC_ADDR& address);
// A uint64 from a Number or BigInt (application error codes are up to 2^62 - 1).
bool ToU64(Napi::Value value, uint64_t* out);

}  // namespace nmq
