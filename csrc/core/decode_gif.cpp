// GIF decoding: the first frame, with the pixels TensorFlow 2.21 gives for
// tf.image.decode_image(..., expand_animations=False) (gif_io.cc over giflib 5.2's
// DGifSlurp). The LZW decoder is our own; it follows giflib's code-width rule.
//
// What TF does, and what is reproduced here:
//  * The signature must start with "GIF8" (TF's sniffing); the version digits are not checked.
//  * giflib reads every frame. A frame that fails (truncated descriptor, colour table or
//    data, LZW code size > 8, zero width/height, early end of its LZW data, corrupt codes)
//    is dropped and reading stops there; the frames before it are kept. With no frame
//    left the decode fails. Unknown blocks or a missing trailer after a good frame are fine.
//  * The output size is the maximum frame width x maximum frame height over the kept
//    frames, NOT the logical screen size (which TF never reads).
//  * Frame 0 is drawn at (left, top) on a black canvas and clipped to that size.
//    Pixels whose index is the transparent index of the first Graphics Control Extension
//    (4-byte, before frame 0) are black. A non-transparent index >= the colour-table size
//    is an error, as is a frame with neither a local nor a global colour table.
//
// Deliberate differences from TF:
//  * channels=4: rgb + alpha 255; channels=1: rgb_to_gray of the rgb (TF refuses both).
//  * When frame 0's data is truncated or corrupt TF fails too, but in later frames giflib
//    tolerates some out-of-table codes; here any such code drops that frame (only the output
//    size of corrupt animations can differ).
#include "core/decode_gif.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include "core/decode.hpp"

namespace pyimgdir {

namespace {

constexpr int kMaxCodes = 4096;  // 12-bit LZW

// One image: descriptor fields and where its colour table and LZW data lie.
struct FrameDesc {
    int left = 0, top = 0, width = 0, height = 0;
    bool interlaced = false;
    const uint8_t* local_table = nullptr;
    int local_count = 0;
    int min_code_size = 0;
};

enum class LzwStatus { Ok, EndsEarly, Corrupt };

// Padding the caller must leave after the LZW data (read 8 bytes at a time) and after the
// `npix` output pixels (strings are copied in 16-byte chunks and the last string may run
// past the end).
constexpr size_t kLzwInputPad = 8;
constexpr size_t kLzwOutputPad = kMaxCodes + 32;
constexpr size_t kKeepRaster = size_t(16) << 20;

// Decodes `npix` pixels of one frame from its concatenated sub-block data (`len` bytes
// followed by kLzwInputPad zero bytes). With out == nullptr it only counts (a later frame
// is checked, not drawn).
//
// Code widths follow giflib: a counter advances after every code read (clear codes
// included) and the width grows when it passes 2^width, up to 12 bits; once the table is
// full nothing is added until a clear code (deferred clear). The first code after a clear
// must be a literal; a code above the next free entry is corrupt (giflib would emit
// garbage for some of those; we refuse).
//
// Every table entry's string already lies in the output: an entry is the previous code's
// string followed by the first byte of the current one, i.e. the output at the previous
// code's position, one byte longer. So entries are (offset, length) spans and decoding is a
// chain of short copies from earlier output.
class LzwDecoder {
public:
    LzwStatus decode(const uint8_t* data, size_t len, int min_code_size, uint8_t* out,
                     uint64_t npix, std::string& why) {
        return out ? run<true>(data, len, min_code_size, out, npix, why)
                   : run<false>(data, len, min_code_size, nullptr, npix, why);
    }

private:
    template <bool kWrite>
    LzwStatus run(const uint8_t* data, size_t len, int min_code_size, uint8_t* out,
                  uint64_t npix, std::string& why) {
        const int clear = 1 << min_code_size;
        const int eoi = clear + 1;
        int running_code = eoi + 1;  // giflib's RunningCode, drives the code width
        int running_bits = min_code_size + 1;
        int max_code1 = 1 << running_bits;
        int next = eoi + 1;  // next free table entry
        int prev = -1;       // previous code; -1 at the start and after a clear
        uint64_t prev_pos = 0, prev_len = 0;
        uint64_t bitbuf = 0;
        int nbits = 0;
        size_t pos = 0;
        uint64_t produced = 0;

        while (produced < npix) {
            if (nbits < running_bits) {
                uint64_t v;
                std::memcpy(&v, data + pos, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
                v = __builtin_bswap64(v);
#endif
                bitbuf |= v << nbits;
                const size_t take = static_cast<size_t>(63 - nbits) >> 3;
                pos += take;
                nbits += static_cast<int>(take) * 8;
                if (pos > len) {  // only padding beyond `len`
                    nbits -= static_cast<int>(pos - len) * 8;
                    pos = len;
                    if (nbits < running_bits) {
                        why = "GIF image data ends before all pixels were decoded";
                        return LzwStatus::EndsEarly;
                    }
                }
            }
            const int code = static_cast<int>(bitbuf & ((uint64_t(1) << running_bits) - 1));
            bitbuf >>= running_bits;
            nbits -= running_bits;
            if (running_code < kMaxCodes + 1 && ++running_code > max_code1 && running_bits < 12) {
                max_code1 <<= 1;
                ++running_bits;
            }

            uint64_t n;
            if (code < clear) {
                n = 1;
                if (kWrite) out[produced] = static_cast<uint8_t>(code);
            } else if (code >= eoi + 1 && code < next) {
                n = len_[code];
                if (kWrite) copy(out + produced, out + off_[code], n);
            } else if (code == next && prev >= 0 && next < kMaxCodes) {
                // KwKwK: the previous string plus its own first byte
                n = prev_len + 1;
                if (kWrite) {
                    copy(out + produced, out + prev_pos, prev_len);
                    out[produced + prev_len] = out[prev_pos];
                }
            } else if (code == clear) {
                running_code = eoi + 1;
                running_bits = min_code_size + 1;
                max_code1 = 1 << running_bits;
                next = eoi + 1;
                prev = -1;
                continue;
            } else if (code == eoi) {
                why = "GIF image data ends (end code) before all pixels were decoded";
                return LzwStatus::EndsEarly;
            } else {
                why = "corrupt GIF LZW data (code " + std::to_string(code) +
                      " is not in the table)";
                return LzwStatus::Corrupt;
            }

            if (prev >= 0 && next < kMaxCodes) {
                off_[next] = static_cast<uint32_t>(prev_pos);
                len_[next] = static_cast<uint16_t>(prev_len + 1);
                ++next;
            }
            prev = code;
            prev_pos = produced;
            prev_len = n;
            produced += n;
        }
        return LzwStatus::Ok;
    }

    // Copies n bytes from an earlier, already final part of the output. src + n <= dst, so
    // 16-byte chunks only ever read bytes before dst or bytes past the n that matter.
    static void copy(uint8_t* dst, const uint8_t* src, uint64_t n) {
        for (uint64_t i = 0; i < n; i += 16) std::memmove(dst + i, src + i, 16);
    }

    uint32_t off_[kMaxCodes];  // output offsets: frames have at most INT_MAX pixels
    uint16_t len_[kMaxCodes];
};

class GifParser {
public:
    GifParser(const uint8_t* data, size_t size) : d_(data), n_(size) {}

    bool has(size_t k) const { return n_ - pos_ >= k; }
    uint8_t u8() { return d_[pos_++]; }
    int u16() {
        int v = d_[pos_] | (d_[pos_ + 1] << 8);
        pos_ += 2;
        return v;
    }
    void skip(size_t k) { pos_ += k; }
    const uint8_t* here() const { return d_ + pos_; }

    // Reads a chain of sub-blocks up to and including the 0-length terminator. With
    // `collect`, their payloads are appended to it. False when the data is truncated.
    bool sub_blocks(std::vector<uint8_t>* collect) {
        for (;;) {
            if (!has(1)) return false;
            const size_t k = u8();
            if (k == 0) return true;
            if (!has(k)) return false;
            if (collect) collect->insert(collect->end(), d_ + pos_, d_ + pos_ + k);
            pos_ += k;
        }
    }

    // Image descriptor after the ',' introducer, its local colour table and LZW code size.
    // On failure returns false with the reason.
    bool image_header(FrameDesc& f, std::string& why) {
        if (!has(9)) {
            why = "truncated GIF data (image descriptor)";
            return false;
        }
        f.left = u16();
        f.top = u16();
        f.width = u16();
        f.height = u16();
        const uint8_t flags = u8();
        f.interlaced = (flags & 0x40) != 0;
        if (flags & 0x80) {
            f.local_count = 1 << ((flags & 7) + 1);
            if (!has(3 * static_cast<size_t>(f.local_count))) {
                why = "truncated GIF data (local colour table)";
                return false;
            }
            f.local_table = here();
            skip(3 * static_cast<size_t>(f.local_count));
        }
        if (!has(1)) {
            why = "truncated GIF data (LZW code size)";
            return false;
        }
        f.min_code_size = u8();
        if (f.min_code_size > 8) {
            why = "invalid GIF LZW minimum code size " + std::to_string(f.min_code_size);
            return false;
        }
        if (f.width <= 0 || f.height <= 0) {
            why = "GIF frame has zero width or height";
            return false;
        }
        if (static_cast<int64_t>(f.width) * f.height > INT_MAX) {
            why = "GIF frame too large: " + std::to_string(f.width) + "x" + std::to_string(f.height);
            return false;
        }
        return true;
    }

private:
    const uint8_t* d_;
    size_t n_;
    size_t pos_ = 0;
};

std::string hex_byte(uint8_t v) {
    static const char digits[] = "0123456789abcdef";
    return std::string("0x") + digits[v >> 4] + digits[v & 15];
}

}  // namespace

void decode_gif(const uint8_t* data, size_t size, const DecodeOptions& opts, Image& out) {
    const int channels = opts.channels;
    if (channels != 1 && channels != 3 && channels != 4)
        throw DecodeError("channels must be 1, 3 or 4");
    if (size < 4 || std::memcmp(data, "GIF8", 4) != 0)
        throw DecodeError("not a GIF file (the signature is not GIF87a/GIF89a)");
    if (size < 13) throw DecodeError("truncated GIF data (header)");

    GifParser p(data, size);
    p.skip(6);
    p.skip(4);  // logical screen size: TF does not use it
    const uint8_t screen_flags = p.u8();
    p.skip(2);  // background colour, aspect ratio
    const uint8_t* global_table = nullptr;
    int global_count = 0;
    if (screen_flags & 0x80) {
        global_count = 1 << ((screen_flags & 7) + 1);
        if (!p.has(3 * static_cast<size_t>(global_count)))
            throw DecodeError("truncated GIF data (global colour table)");
        global_table = p.here();
        p.skip(3 * static_cast<size_t>(global_count));
    }

    LzwDecoder lzw;  // 24 KiB of tables, on the stack (a thread_local costs a TLS lookup per code)
    std::vector<uint8_t> lzw_data;  // concatenated sub-block payloads of one frame
    int transparent = -1;      // from the first Graphics Control Extension before frame 0
    bool seen_gce = false;
    FrameDesc f0;
    std::string why;

    // Records up to and including frame 0: any failure here leaves TF with no frame.
    for (;;) {
        if (!p.has(1)) throw DecodeError("truncated GIF data (no image before the end of file)");
        const uint8_t intro = p.u8();
        if (intro == 0x2C) break;
        if (intro == 0x3B) throw DecodeError("GIF contains no image");
        if (intro != 0x21) {
            throw DecodeError("unexpected GIF block type " + hex_byte(intro) +
                              " before the first image");
        }
        if (!p.has(2)) throw DecodeError("truncated GIF data (extension)");
        const uint8_t label = p.u8();
        const size_t first_len = p.u8();
        if (first_len > 0) {
            if (!p.has(first_len)) throw DecodeError("truncated GIF data (extension)");
            // giflib keeps the first sub-block of each extension under its label; the GCB is
            // taken from the first 0xF9 one and only when that sub-block is 4 bytes long.
            if (label == 0xF9 && !seen_gce) {
                seen_gce = true;
                const uint8_t* b = p.here();
                if (first_len == 4 && (b[0] & 1)) transparent = b[3];
            }
            p.skip(first_len);
            if (!p.sub_blocks(nullptr)) throw DecodeError("truncated GIF data (extension)");
        }
    }

    if (!p.image_header(f0, why)) throw DecodeError(why);
    const int64_t f0_pixels = static_cast<int64_t>(f0.width) * f0.height;
    if (f0_pixels > opts.max_pixels)
        throw DecodeError("GIF image too large: " + std::to_string(f0.width) + "x" +
                          std::to_string(f0.height) + " exceeds max_pixels " +
                          std::to_string(opts.max_pixels));
    if (!p.sub_blocks(&lzw_data)) throw DecodeError("truncated GIF data (image data)");
    size_t lzw_len = lzw_data.size();
    lzw_data.resize(lzw_len + kLzwInputPad, 0);
    // Frame 0's colour indices in stream order (every one is written before it is read).
    // Rasters up to kKeepRaster bytes reuse a per-thread buffer; bigger ones are freed after.
    thread_local std::vector<uint8_t> kept_raster;
    std::vector<uint8_t> big_raster;
    const size_t raster_size = static_cast<size_t>(f0_pixels) + kLzwOutputPad;
    std::vector<uint8_t>& raster_buf = raster_size <= kKeepRaster ? kept_raster : big_raster;
    if (raster_buf.size() < raster_size) raster_buf.resize(raster_size);
    uint8_t* const raster = raster_buf.data();
    if (lzw.decode(lzw_data.data(), lzw_len, f0.min_code_size, raster,
                   static_cast<uint64_t>(f0_pixels), why) != LzwStatus::Ok)
        throw DecodeError(why);

    // Later frames only matter for the output size (max frame width/height over the frames
    // giflib keeps). They are checked and counted, never drawn.
    int out_w = f0.width, out_h = f0.height;
    for (bool go = true; go;) {
        if (!p.has(1)) break;  // missing trailer: fine
        const uint8_t intro = p.u8();
        switch (intro) {
            case 0x2C: {
                FrameDesc f;
                std::string ignored;
                if (!p.image_header(f, ignored)) {
                    go = false;
                    break;
                }
                lzw_data.clear();
                if (!p.sub_blocks(&lzw_data)) {
                    go = false;
                    break;
                }
                lzw_len = lzw_data.size();
                lzw_data.resize(lzw_len + kLzwInputPad, 0);
                if (lzw.decode(lzw_data.data(), lzw_len, f.min_code_size, nullptr,
                               static_cast<uint64_t>(f.width) * f.height,
                               ignored) != LzwStatus::Ok) {
                    go = false;
                    break;
                }
                out_w = std::max(out_w, f.width);
                out_h = std::max(out_h, f.height);
                break;
            }
            case 0x21:
                if (!p.has(1)) {
                    go = false;
                    break;
                }
                p.skip(1);
                go = p.sub_blocks(nullptr);
                break;
            default:  // trailer, or an unknown block (giflib stops there too)
                go = false;
                break;
        }
    }

    const int64_t out_pixels = static_cast<int64_t>(out_w) * out_h;
    if (out_pixels > opts.max_pixels)
        throw DecodeError("GIF image too large: " + std::to_string(out_w) + "x" +
                          std::to_string(out_h) + " exceeds max_pixels " +
                          std::to_string(opts.max_pixels));

    const uint8_t* table = f0.local_table ? f0.local_table : global_table;
    const int table_count = f0.local_table ? f0.local_count : global_count;
    if (table == nullptr) throw DecodeError("GIF image has no colour table (neither local nor global)");

    // Stream row -> image row, for interlaced frames (passes: every 8th from 0, every 8th
    // from 4, every 4th from 2, every 2nd from 1).
    std::vector<int> src_row(static_cast<size_t>(f0.height));
    if (f0.interlaced) {
        static const int start[4] = {0, 4, 2, 1}, step[4] = {8, 8, 4, 2};
        int r = 0;
        for (int pass = 0; pass < 4; ++pass)
            for (int y = start[pass]; y < f0.height; y += step[pass]) src_row[y] = r++;
    } else {
        for (int y = 0; y < f0.height; ++y) src_row[y] = y;
    }

    out.reset(out_h, out_w, channels);
    uint8_t* dst = out.data();
    const bool covers = f0.left == 0 && f0.top == 0 && f0.width == out_w && f0.height == out_h;
    if (!covers) {
        // Uncovered canvas is black.
        if (channels == 4) {
            for (int64_t i = 0; i < out_pixels; ++i) {
                uint8_t* q = dst + i * 4;
                q[0] = q[1] = q[2] = 0;
                q[3] = 255;
            }
        } else {
            std::memset(dst, 0, static_cast<size_t>(out_pixels) * channels);
        }
    }
    // Index -> output pixel. The transparent index is black; an index past the colour table
    // is an error only if a drawn pixel uses it.
    uint8_t lut[256][4];
    uint8_t bad[256];
    for (int i = 0; i < 256; ++i) {
        uint8_t r = 0, g = 0, b = 0;
        bad[i] = 0;
        // Pillow keeps the transparent index's colour (alpha 0 marks it for rgba).
        if (i != transparent || opts.pillow) {
            if (i < table_count) {
                r = table[3 * i];
                g = table[3 * i + 1];
                b = table[3 * i + 2];
            } else {
                bad[i] = 1;
            }
        }
        if (channels == 1) {
            lut[i][0] = rgb_to_gray(r, g, b);
        } else {
            lut[i][0] = r;
            lut[i][1] = g;
            lut[i][2] = b;
            lut[i][3] = (opts.pillow && i == transparent) ? 0 : 255;
        }
    }

    const int x0 = f0.left, y0 = f0.top;
    const int x1 = std::min(f0.left + f0.width, out_w);
    const int y1 = std::min(f0.top + f0.height, out_h);
    if (x0 >= x1) return;
    const int n = x1 - x0;
    for (int y = y0; y < y1; ++y) {
        const uint8_t* src = raster +
                             static_cast<size_t>(src_row[y - y0]) * static_cast<size_t>(f0.width);
        uint8_t* d = dst + (static_cast<size_t>(y) * out_w + x0) * channels;
        uint8_t any_bad = 0;
        switch (channels) {
            case 1:
                for (int x = 0; x < n; ++x) {
                    any_bad |= bad[src[x]];
                    d[x] = lut[src[x]][0];
                }
                break;
            case 3:
                for (int x = 0; x < n; ++x) {
                    any_bad |= bad[src[x]];
                    std::memcpy(d + 3 * x, lut[src[x]], 3);
                }
                break;
            default:
                for (int x = 0; x < n; ++x) {
                    any_bad |= bad[src[x]];
                    std::memcpy(d + 4 * x, lut[src[x]], 4);
                }
                break;
        }
        if (any_bad) {
            for (int x = 0; x < n; ++x)
                if (bad[src[x]])
                    throw DecodeError("GIF pixel uses colour index " + std::to_string(src[x]) +
                                      " outside the " + std::to_string(table_count) +
                                      "-entry colour table");
        }
    }
}

}  // namespace pyimgdir
