// Fuzz target: the STAMP parsers a sender and a reflector run on what the network hands them
// (test packets, replies, TLV areas, Return Path values). Beyond the sanitizers' part, TLVs that
// parse write back to the same bytes, and a reply that parses gives record flags.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <variant>

#include "edge-manager/stamp/wire.h"

namespace {

using namespace segwan::stamp;

[[noreturn]] void Broken(const char* what) {
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

const Key kKey(32, 0x5e);

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  for (Mode m : {Mode::kUnauthenticated, Mode::kAuthenticated}) {
    const Key* key = m == Mode::kAuthenticated ? &kKey : nullptr;
    (void)ParseSender(bytes, m, key);
    auto reply = ParseReflector(bytes, m, key);
    if (auto* p = std::get_if<ReflectorPacket>(&reply)) {
      (void)RecordFlags(*p, m == Mode::kAuthenticated);
      (void)FindFollowUp(p->tlvs);
    }
  }
  if (auto tlvs = ParseTlvs(bytes)) {
    std::vector<uint8_t> again;
    AppendTlvs(again, *tlvs);
    if (again.size() != size || !std::equal(again.begin(), again.end(), bytes.begin()))
      Broken("TLVs that parsed do not write back to the same bytes");
    for (const Tlv& t : *tlvs) (void)ParseReturnPath(t.value);
  }
  (void)FlaggedCopy(bytes, 0x40);
  (void)ParseReturnPath(bytes);
  return 0;
}
