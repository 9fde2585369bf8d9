// _core's decode functions: decode, sniff_format, decode_jpeg_scaled, resize and the JPEG
// checkpoint statistics (for tests, benchmarks and the Python-side fallbacks).
#include <array>
#include <cstring>
#include <string_view>

#include "bindings_common.hpp"
#include "core/decode.hpp"
#include "core/jpeg_entropy.hpp"

namespace pyimgdir {
namespace {

// Decodes without the GIL into a per-thread pixel buffer kept between calls (a fresh one per
// call costs a zero-fill and page faults: for a 12-megapixel photo, more than the copy out),
// given back when over 64 MiB. Returns an (H, W, C) copy (of just the region after a region
// decode) and whether the fast 1/8 or 1/4 JPEG path decoded it.
std::pair<py::array_t<uint8_t>, bool> decode_to_array(std::string_view data, const DecodeOptions& o) {
    thread_local Image img;
    {
        py::gil_scoped_release nogil;
        decode_image(reinterpret_cast<const uint8_t*>(data.data()), data.size(), o, img);
    }
    const int w = img.region ? img.region_w : img.width;
    py::array_t<uint8_t> out({img.height, w, img.channels});
    const size_t row = static_cast<size_t>(w) * img.channels, stride = static_cast<size_t>(img.width) * img.channels;
    for (int y = 0; y < img.height; ++y)
        std::memcpy(out.mutable_data() + y * row, img.data() + y * stride + static_cast<size_t>(img.region_x) * img.channels,
                    row);
    const bool dc = img.from_dc_terms;
    if (img.pixels.capacity() > (size_t(64) << 20)) std::vector<uint8_t>().swap(img.pixels);
    return {std::move(out), dc};
}

}  // namespace

void register_decode(py::module_& m) {
    m.def("sniff_format", [](py::bytes data) {
        std::string_view v = data;
        return std::string(format_name(sniff_format(reinterpret_cast<const uint8_t*>(v.data()), v.size())));
    });

    m.def(
        "decode",
        [](py::bytes data, int channels, int64_t max_pixels, const std::string& decoder) {
            std::string_view v = data;
            DecodeOptions o;
            o.channels = channels;
            o.max_pixels = max_pixels;
            o.accurate_dct = o.pillow = parse_decoder(decoder) == Decoder::Pillow;
            return decode_to_array(v, o).first;
        },
        py::arg("data"), py::arg("channels") = 3, py::arg("max_pixels") = int64_t(1) << 28,
        py::arg("decoder") = "tensorflow");

    // The size the decoder gives an image (a GIF's largest frame, a JPEG's frame header), read
    // the way the crop path reads it: one reader for local files and fetched objects.
    m.def(
        "image_size",
        [](py::bytes data, int channels, int64_t max_pixels) {
            std::string_view v = data;
            int h = 0, w = 0;
            {
                py::gil_scoped_release nogil;
                image_dimensions(reinterpret_cast<const uint8_t*>(v.data()), v.size(), channels, max_pixels, h, w);
            }
            return std::make_pair(h, w);
        },
        py::arg("data"), py::arg("channels") = 3, py::arg("max_pixels") = int64_t(1) << 28);

    m.def("jpeg_checkpoint_stats", [] {
        const JpegCheckpointStats st = jpeg_checkpoint_stats();
        return py::dict(py::arg("scans") = st.scans, py::arg("bytes") = st.bytes, py::arg("budget") = st.budget,
                        py::arg("rewrites") = st.rewrites);
    });

    m.def(
        "decode_jpeg_scaled",
        [](py::bytes data, int channels, int scale, bool fast_eighth, bool fast_quarter,
           std::optional<std::array<int, 4>> region, bool region_scan) {
            if (scale != 1 && scale != 2 && scale != 4 && scale != 8)
                throw std::invalid_argument("scale must be 1, 2, 4 or 8");
            std::string_view v = data;
            DecodeOptions o;
            o.channels = channels;
            o.jpeg_fast_eighth = fast_eighth;
            o.jpeg_fast_quarter = fast_quarter;
            o.jpeg_region_scan = region_scan;
            o.choose_jpeg_scale = [](const void* ctx, int, int) { return *static_cast<const int*>(ctx); };
            o.scale_ctx = &scale;
            DecodeRegion r;
            if (region) {
                r.y = (*region)[0];
                r.x = (*region)[1];
                r.h = (*region)[2];
                r.w = (*region)[3];
                r.scale = scale;
                o.choose_region = [](const void* ctx, int, int, DecodeRegion& out) {
                    out = *static_cast<const DecodeRegion*>(ctx);
                    return true;
                };
                o.region_ctx = &r;
            }
            auto [out, dc] = decode_to_array(v, o);
            return py::make_tuple(out, dc);
        },
        py::arg("data"), py::arg("channels") = 3, py::arg("scale") = 8, py::arg("fast_eighth") = true,
        py::arg("fast_quarter") = false, py::arg("region") = py::none(), py::arg("region_scan") = true);

    m.def(
        "resize",
        [](py::array_t<uint8_t, py::array::c_style | py::array::forcecast> img, int height, int width,
           const std::string& method, bool flip_horizontal, bool flip_vertical) -> py::array {
            if (img.ndim() != 3) throw std::invalid_argument("expected an HxWxC uint8 array");
            if (height < 1 || width < 1) throw std::invalid_argument("size must be positive");
            const int h = static_cast<int>(img.shape(0)), w = static_cast<int>(img.shape(1)),
                      c = static_cast<int>(img.shape(2));
            const Interpolation m = parse_interpolation(method);
            const uint8_t* src = img.data();
            const Mirror mirror{flip_horizontal, flip_vertical};
            if ((mirror.h || mirror.v) && m != Interpolation::Bilinear)
                throw std::invalid_argument("flips are fused into the bilinear resize only");
            if (m == Interpolation::Nearest) {
                py::array_t<uint8_t> out({height, width, c});
                uint8_t* dst = out.mutable_data();
                py::gil_scoped_release nogil;
                resize_nearest_u8(src, h, w, c, static_cast<size_t>(w) * c, dst, height, width,
                                  static_cast<size_t>(width) * c);
                return std::move(out);
            }
            py::array_t<float> out({height, width, c});
            float* dst = out.mutable_data();
            py::gil_scoped_release nogil;
            if (m == Interpolation::Bilinear)  // the same values as resize_to_float, mirrored as asked
                resize_bilinear_hwc(src, h, w, c, static_cast<size_t>(w) * c, dst, height, width,
                                    static_cast<size_t>(width) * c, mirror);
            else
                resize_to_float(src, h, w, c, static_cast<size_t>(w) * c, dst, height, width,
                                static_cast<size_t>(width) * c, m);
            return std::move(out);
        },
        py::arg("image"), py::arg("height"), py::arg("width"), py::arg("method") = "bilinear",
        py::arg("flip_horizontal") = false, py::arg("flip_vertical") = false);
}

}  // namespace pyimgdir
