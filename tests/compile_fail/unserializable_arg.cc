// Must NOT compile: a task argument type without a MessagePack form. The test expects weft's
// readable static_assert message in the compiler output.
#include <weft/weft.h>

struct Handle {
  int* fd;
};
int use(Handle h) { return *h.fd; }
WEFT_REMOTE(use);

int main() {
  int x = 0;
  return weft::get(weft::task(use).remote(Handle{&x}));
}
