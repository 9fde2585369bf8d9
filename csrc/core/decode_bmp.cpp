// BMP decoding with TensorFlow's DecodeBmp semantics (decode_image_op.cc, TF 2.21):
//
//  * Fields are read at fixed offsets whatever the DIB header size: pixel-data offset
//    (int32 @10), width (int32 @18), height (int32 @22), bits per pixel (int16 @28).
//  * 8, 24 and 32 bits per pixel. 8-bit pixels are the raw palette *indices*, replicated
//    as grey (TF never reads the colour table); 24-bit is BGR; 32-bit is BGRA whose 4th
//    byte is the alpha for channels=4 (whatever the compression field says) and is
//    dropped for channels=3. Files with no alpha get 255 for channels=4.
//  * Positive height = bottom-up rows, negative height = top-down. Rows are padded to
//    4 bytes, and the file size must equal offset + row_size * |height| exactly (TF
//    refuses both missing and trailing bytes).
//
// Deliberate differences from TF:
//  * channels=1 (TF refuses BMP): decoded as RGB, converted with rgb_to_gray.
//  * TF accepts any bpp with bpp/8 in {1,3,4} (e.g. 26); only 8, 24 and 32 are accepted
//    here. RLE/JPEG/PNG-compressed files (which TF refuses through the size check, except
//    by coincidence) are refused by name.
#include "core/decode_bmp.hpp"

#include <cstdlib>
#include <string>

#include "core/decode.hpp"

namespace pyimgdir {

namespace {

inline int32_t le_i32(const uint8_t* p) {
    return static_cast<int32_t>(static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
                                (static_cast<uint32_t>(p[2]) << 16) |
                                (static_cast<uint32_t>(p[3]) << 24));
}
inline uint32_t le_u32(const uint8_t* p) { return static_cast<uint32_t>(le_i32(p)); }
inline int16_t le_i16(const uint8_t* p) {
    return static_cast<int16_t>(static_cast<uint16_t>(p[0] | (p[1] << 8)));
}

const char* compression_name(uint32_t c) {
    switch (c) {
        case 1: return "RLE8";
        case 2: return "RLE4";
        case 4: return "JPEG";
        case 5: return "PNG";
        case 12: return "CMYK RLE8";
        case 13: return "CMYK RLE4";
        default: return nullptr;
    }
}

}  // namespace

void decode_bmp(const uint8_t* data, size_t size, const DecodeOptions& opts, Image& out) {
    const int channels = opts.channels;
    if (channels != 1 && channels != 3 && channels != 4)
        throw DecodeError("channels must be 1, 3 or 4");
    if (size < 32)
        throw DecodeError("BMP file too short for its header (" + std::to_string(size) +
                          " bytes, at least 32 needed)");

    const int64_t offset = le_i32(data + 10);
    const int64_t width = le_i32(data + 18);
    const int64_t height = le_i32(data + 22);
    const int bpp = le_i16(data + 28);

    if (bpp != 8 && bpp != 24 && bpp != 32)
        throw DecodeError("unsupported BMP bit depth " + std::to_string(bpp) +
                          " (only 8, 24 and 32 bits per pixel are decoded)");
    // The compression field exists only in BITMAPINFOHEADER and later (DIB size >= 40).
    if (size >= 34 && le_u32(data + 14) >= 40) {
        if (const char* name = compression_name(le_u32(data + 30)))
            throw DecodeError(std::string("unsupported BMP compression (") + name + ")");
    }
    if (width <= 0) throw DecodeError("BMP width must be positive, got " + std::to_string(width));
    if (height == 0) throw DecodeError("BMP height is zero");
    if (offset < 0) throw DecodeError("BMP pixel data offset is negative");

    const int64_t abs_height = height < 0 ? -height : height;  // int64: no INT32_MIN overflow
    const int64_t pixels = width * abs_height;                 // < 2^62, no overflow
    // TF's own limit (total pixel count below INT32_MAX / 8), then the caller's.
    if (pixels >= int64_t(0x7FFFFFFF) / 8)
        throw DecodeError("BMP dimensions too large: " + std::to_string(width) + "x" +
                          std::to_string(abs_height));
    if (pixels > opts.max_pixels)
        throw DecodeError("BMP image too large: " + std::to_string(width) + "x" +
                          std::to_string(abs_height) + " exceeds max_pixels " +
                          std::to_string(opts.max_pixels));

    const int in_ch = bpp / 8;
    const int64_t row_size = (in_ch * width + 3) / 4 * 4;
    const int64_t expected = offset + row_size * abs_height;
    if (static_cast<int64_t>(size) != expected)
        throw DecodeError("BMP file size " + std::to_string(size) +
                          " does not match its header (pixel data offset " +
                          std::to_string(offset) + " + " + std::to_string(abs_height) + " rows of " +
                          std::to_string(row_size) + " bytes = " + std::to_string(expected) + ")");

    // From here every row read is inside [offset, size): size == offset + row_size*|h| and
    // in_ch * width <= row_size.
    const int w = static_cast<int>(width);
    const int h = static_cast<int>(abs_height);
    const bool top_down = height < 0;

    // Pillow (opts.pillow): 8-bit pixels go through the colour table (BGRX entries after
    // the DIB header; missing entries are black), and a 32-bit pixel's 4th byte is alpha
    // only with BI_BITFIELDS and an alpha mask of 0xFF000000 (otherwise "BGRX": alpha 255).
    uint8_t table[256][3] = {};
    bool use_alpha = in_ch == 4;
    if (opts.pillow) {
        const int64_t dib = size >= 18 ? le_u32(data + 14) : 0;
        if (in_ch == 1) {
            int64_t count = (dib >= 40 && size >= 50) ? le_u32(data + 46) : 0;
            if (count <= 0 || count > 256) count = 256;
            const int64_t start = 14 + dib;
            for (int64_t i = 0; i < count; ++i) {
                const int64_t at = start + 4 * i;
                if (at + 3 > offset || at + 3 > static_cast<int64_t>(size)) break;
                table[i][0] = data[at + 2];
                table[i][1] = data[at + 1];
                table[i][2] = data[at];
            }
        }
        use_alpha = in_ch == 4 && dib >= 56 && size >= 58 && le_u32(data + 30) == 3 &&
                    le_u32(data + 54) == 0xFF000000u;
    }
    out.reset(h, w, channels);
    uint8_t* dst = out.data();
    const uint8_t* pix = data + offset;

    for (int y = 0; y < h; ++y) {
        const uint8_t* src = pix + static_cast<size_t>(top_down ? y : h - 1 - y) *
                                       static_cast<size_t>(row_size);
        uint8_t* d = dst + static_cast<size_t>(y) * static_cast<size_t>(w) * channels;
        switch (in_ch) {
            case 1:
                if (opts.pillow) {  // (channels 3 or 4: grey comes from RGB in decode.cpp)
                    for (int x = 0; x < w; ++x, d += channels) {
                        const uint8_t* c = table[src[x]];
                        d[0] = c[0];
                        d[1] = c[1];
                        d[2] = c[2];
                        if (channels == 4) d[3] = 255;
                    }
                } else if (channels == 1) {
                    for (int x = 0; x < w; ++x) d[x] = src[x];  // rgb_to_gray(v,v,v) == v
                } else {
                    for (int x = 0; x < w; ++x, d += channels) {
                        d[0] = d[1] = d[2] = src[x];
                        if (channels == 4) d[3] = 255;
                    }
                }
                break;
            case 3:
            case 4:
                for (int x = 0; x < w; ++x, src += in_ch, d += channels) {
                    const uint8_t b = src[0], g = src[1], r = src[2];
                    if (channels == 1) {
                        d[0] = rgb_to_gray(r, g, b);
                    } else {
                        d[0] = r;
                        d[1] = g;
                        d[2] = b;
                        if (channels == 4) d[3] = use_alpha ? src[3] : 255;
                    }
                }
                break;
        }
    }
}

}  // namespace pyimgdir
