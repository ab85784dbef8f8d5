// Must NOT compile: a remote function whose result has no MessagePack form.
#include <weft/weft.h>

struct Opaque {
  void* p;
};
Opaque make() { return Opaque{nullptr}; }
WEFT_REMOTE(make);

int main() {
  auto r = weft::task(make).remote();
  return r.valid() ? 0 : 1;
}
