// A message, a public key and a prehashed signature of the message, written
// by the stock minisign 0.11 (`minisign -G -W`, then `minisign -S`): for
// tests that need a real signature without a minisign binary.
#pragma once

#include <string_view>

namespace xenctl::testing {

inline constexpr std::string_view kMinisignMessage = "hello golden image\n";
inline constexpr std::string_view kMinisignPublicKey =
    "untrusted comment: minisign public key 53DB1FFA3519811B\n"
    "RWQbgRk1+h/bU3mtkquF5h/GkgsQh2lW2xQXMJ74ldXzZT6gsgLhLBNz\n";
inline constexpr std::string_view kMinisignPrehashedSig =
    "untrusted comment: signature from minisign secret key\n"
    "RUQbgRk1+h/bU9+Qd+LsnNt5B2uMGWZYOBfxLzDvCqHyO0qofyPJQivFMETeWeKeR2JFACfE93J2kdAwCOJ28BuzLfd48RX05wo=\n"
    "trusted comment: timestamp:1 file:msg.txt\n"
    "bq1UIRMqrcoF1+vgCyaBNgx4cqYJ0jrD4otZTRZEJJWj45/ElauTisWoi1ExvPt+Bk3YSmhxQ9ler6/iWBUjBw==\n";

}  // namespace xenctl::testing
