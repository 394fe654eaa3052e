#include "js_util.h"

#include <arpa/inet.h>

#include <cstdio>
#include <cstring>

namespace nmq {

// Constants private to this addon: a tag only has to differ from every other addon's.
const napi_type_tag kConfigurationTag = {0x6e6d71636f6e6669ULL, 0x8f3a2c41d5e6b701ULL};
const napi_type_tag kListenerTag = {0x6e6d716c69737465ULL, 0x1b9e7d3c5a2f4602ULL};
const napi_type_tag kConnectionTag = {0x6e6d71636f6e6e65ULL, 0x4c8a1f6e2d7b3903ULL};
const napi_type_tag kStreamTag = {0x6e6d717374726561ULL, 0x7d2e9b4a6c1f5804ULL};

void Tag(Napi::Env env, Napi::Value object, const napi_type_tag& tag) {
  napi_type_tag_object(env, object, &tag);
}

bool HasTag(Napi::Env env, Napi::Value value, const napi_type_tag& tag) {
  if (!value.IsObject()) return false;
  bool result = false;
  return napi_check_object_type_tag(env, value, &tag, &result) == napi_ok && result;
}

bool ParseAddress(const std::string& ip, uint16_t port, QUIC_ADDR* out) {
  std::memset(out, 0, sizeof(*out));
  if (ip.empty()) {
    QuicAddrSetFamily(out, QUIC_ADDRESS_FAMILY_UNSPEC);
  } else if (inet_pton(AF_INET, ip.c_str(), &out->Ipv4.sin_addr) == 1) {
    QuicAddrSetFamily(out, QUIC_ADDRESS_FAMILY_INET);
  } else if (inet_pton(AF_INET6, ip.c_str(), &out->Ipv6.sin6_addr) == 1) {
    QuicAddrSetFamily(out, QUIC_ADDRESS_FAMILY_INET6);
  } else {
    return false;
  }
  QuicAddrSetPort(out, port);
  return true;
}

Napi::Value AddressObject(Napi::Env env, const QUIC_ADDR& address) {
  char text[INET6_ADDRSTRLEN] = {0};
  const auto family = QuicAddrGetFamily(&address);
  const bool v6 = family == QUIC_ADDRESS_FAMILY_INET6 || family == QUIC_ADDRESS_FAMILY_UNSPEC;
  if (family == QUIC_ADDRESS_FAMILY_UNSPEC) {
    // A listener on every address: MsQuic binds one dual-stack socket (IPv6 and IPv4-mapped), which
    // node:net reports as '::'.
    std::snprintf(text, sizeof(text), "::");
  } else if (v6) {
    inet_ntop(AF_INET6, &address.Ipv6.sin6_addr, text, sizeof(text));
  } else {
    inet_ntop(AF_INET, &address.Ipv4.sin_addr, text, sizeof(text));
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("address", text);
  result.Set("family", v6 ? "IPv6" : "IPv4");
  result.Set("port", QuicAddrGetPort(&address));
  return result;
}

bool ToU64(Napi::Value value, uint64_t* out) {
  if (value.IsBigInt()) {
    bool lossless = false;
    *out = value.As<Napi::BigInt>().Uint64Value(&lossless);
    return lossless;
  }
  if (value.IsNumber()) {
    double d = value.As<Napi::Number>().DoubleValue();
    if (d < 0 || d > 9007199254740991.0 || d != static_cast<double>(static_cast<uint64_t>(d))) return false;
    *out = static_cast<uint64_t>(d);
    return true;
  }
  return false;
}

}  // namespace nmq
