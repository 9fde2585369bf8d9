// pyimgdir._core: type conversion, GIL release and error mapping around csrc/core. No policy.
// The functions and classes are registered by group: register_walk.cpp, register_decode.cpp,
// register_loader.cpp (helpers they share: bindings_common.hpp).
#include "bindings_common.hpp"
#include "core/image.hpp"

PYBIND11_MODULE(_core, m) {
    using namespace pyimgdir;
    m.doc() = "pyimgdir's compiled core (private): walk, decode, resize, batch pipeline.";
    py::register_exception<DecodeError>(m, "DecodeError", PyExc_ValueError);
    register_walk(m);
    register_decode(m);
    register_loader(m);
}
