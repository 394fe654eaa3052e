// MsQuic status codes by name: the one table the binding's error codes are built from.
#pragma once
#include <msquic.h>

namespace nmq {

// "QUIC_STATUS_CONNECTION_REFUSED", …; "QUIC_STATUS_TLS_ALERT_<n>" / "QUIC_STATUS_UNKNOWN" otherwise.
const char* StatusName(QUIC_STATUS status);

}  // namespace nmq
