#include "core/wire.h"

#include <fmt/format.h>

namespace weft::wire {

Status malformed(const Protocol& p, std::string_view what) {
  return Status::invalid_argument(fmt::format("malformed {} message: {}", p.name, what));
}

Result<Envelope> open(const Protocol& p, std::string_view bytes) {
  auto parsed = unpack_message(bytes);
  if (!parsed.ok()) return malformed(p, parsed.status().message());
  Envelope e;
  e.handle = std::move(*parsed);
  const msgpack::object& o = e.handle.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 3)
    return malformed(p, "not an array [version, type, body]");
  const msgpack::object* f = o.via.array.ptr;
  if (f[0].type != msgpack::type::POSITIVE_INTEGER) return malformed(p, "the version is not a number");
  if (f[0].via.u64 != p.version) {
    return malformed(p, fmt::format("version {}, this build speaks version {}", f[0].via.u64, p.version));
  }
  if (f[1].type != msgpack::type::POSITIVE_INTEGER || f[1].via.u64 > UINT8_MAX) return malformed(p, "bad type");
  if (f[2].type != msgpack::type::ARRAY) return malformed(p, "the body is not an array");
  e.type = static_cast<uint8_t>(f[1].via.u64);
  e.body = &f[2];
  return e;
}

}  // namespace weft::wire
