#include "core/decode_png.hpp"

#include <csetjmp>
#include <cstring>
#include <string>
#include <vector>

#include <png.h>

namespace pyimgdir {
namespace {

struct Reader {
    const uint8_t* data;
    size_t size;
    size_t pos;
    std::string error;
};

void read_fn(png_structp png, png_bytep out, png_size_t n) {
    auto* r = static_cast<Reader*>(png_get_io_ptr(png));
    if (n > r->size - r->pos) png_error(png, "truncated PNG data (the file ends early)");
    std::memcpy(out, r->data + r->pos, n);
    r->pos += n;
}

// libpng's fatal errors longjmp back into decode_png (never past it).
void error_fn(png_structp png, png_const_charp msg) {
    auto* r = static_cast<Reader*>(png_get_error_ptr(png));
    if (r && r->error.empty()) r->error = msg ? msg : "unknown libpng error";
    png_longjmp(png, 1);
}

void warning_fn(png_structp, png_const_charp) {}

struct PngHandle {
    png_structp png = nullptr;
    png_infop info = nullptr;
    ~PngHandle() {
        if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
    }
};

}  // namespace

void decode_png(const uint8_t* data, size_t size, const DecodeOptions& opts, Image& out) {
    Reader reader{data, size, 0, {}};
    PngHandle h;
    h.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, error_fn, warning_fn);
    if (!h.png) throw DecodeError("out of memory creating the PNG decoder");
    h.info = png_create_info_struct(h.png);
    if (!h.info) throw DecodeError("out of memory creating the PNG decoder");
    // Row pointers live outside the setjmp scope so they are valid after a jump.
    std::vector<png_bytep> rows;

    if (setjmp(png_jmpbuf(h.png))) {
        throw DecodeError("invalid PNG data: " + reader.error);
    }
    png_set_read_fn(h.png, &reader, read_fn);
    png_set_user_limits(h.png, 0x7fffffff, 0x7fffffff);
    png_read_info(h.png, h.info);

    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0;
    png_get_IHDR(h.png, h.info, &width, &height, &bit_depth, &color_type, nullptr, nullptr, nullptr);
    if (width == 0 || height == 0) throw DecodeError("invalid PNG dimensions");
    if (static_cast<int64_t>(width) * static_cast<int64_t>(height) > opts.max_pixels) {
        throw DecodeError("image is " + std::to_string(width) + "x" + std::to_string(height) +
                          " pixels, more than the limit of " + std::to_string(opts.max_pixels) +
                          " (max_pixels)");
    }

    // The same transforms, in the same order, as TensorFlow's PNG decoder.
    const int want = opts.channels;
    const bool has_trns = png_get_valid(h.png, h.info, PNG_INFO_tRNS) != 0;
    const bool has_alpha = (color_type & PNG_COLOR_MASK_ALPHA) != 0;
    if ((want & 1) == 0) {
        if (!has_alpha) {
            if (has_trns)
                png_set_tRNS_to_alpha(h.png);
            else
                // (TensorFlow's filler is 2^depth - 1, applied after the expansion to
                // 8 bits: 1, 3 or 15 for 1-, 2- and 4-bit grey; Pillow's alpha is opaque.)
                png_set_add_alpha(h.png, opts.pillow ? (bit_depth > 8 ? 0xFFFFu : 0xFFu) : (1u << bit_depth) - 1,
                                  PNG_FILLER_AFTER);
        }
    } else if (has_alpha || has_trns) {
        png_set_strip_alpha(h.png);
    }
    // Pillow reads 16-bit grey as I;16 and converts it to RGB/RGBA by clipping at 255
    // (not by taking the high byte): those samples are read at 16 bits and clipped below.
    const bool clip16 = opts.pillow && bit_depth == 16 && color_type == PNG_COLOR_TYPE_GRAY;
    if (bit_depth > 8 && !clip16) png_set_strip_16(h.png);
    png_set_packing(h.png);
    png_set_interlace_handling(h.png);
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(h.png);
    const bool want_gray = want < 3;
    const bool is_gray = (color_type & PNG_COLOR_MASK_COLOR) == 0;
    if (is_gray && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(h.png);
    if (want_gray) {
        if (!is_gray) png_set_rgb_to_gray_fixed(h.png, 1, 29900, 58700);
    } else if (is_gray) {
        png_set_gray_to_rgb(h.png);
    }
    png_read_update_info(h.png, h.info);

    const size_t rowbytes = png_get_rowbytes(h.png, h.info);
    const int got_c = png_get_channels(h.png, h.info);
    const size_t sample_bytes = clip16 ? 2 : 1;
    if (got_c != want || rowbytes != static_cast<size_t>(width) * want * sample_bytes)
        throw DecodeError("unexpected PNG layout after conversion (" + std::to_string(got_c) +
                          " channels)");
    out.reset(static_cast<int>(height), static_cast<int>(width), want);
    rows.resize(height);
    if (clip16) {
        std::vector<uint8_t> wide(rowbytes * height);
        for (png_uint_32 y = 0; y < height; ++y) rows[y] = wide.data() + static_cast<size_t>(y) * rowbytes;
        png_read_image(h.png, rows.data());
        png_read_end(h.png, nullptr);
        const size_t n = static_cast<size_t>(width) * height * want;
        uint8_t* o = out.data();
        for (size_t i = 0; i < n; ++i) {
            const unsigned v = (static_cast<unsigned>(wide[2 * i]) << 8) | wide[2 * i + 1];
            o[i] = static_cast<uint8_t>(v > 255 ? 255 : v);
        }
        return;
    }
    for (png_uint_32 y = 0; y < height; ++y) rows[y] = out.data() + static_cast<size_t>(y) * rowbytes;
    png_read_image(h.png, rows.data());
    png_read_end(h.png, nullptr);
}

}  // namespace pyimgdir
