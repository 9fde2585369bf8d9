#include "core/decode_jpeg.hpp"

#include "core/decode_jpeg_eighth.hpp"
#include "core/jpeg_entropy.hpp"
#include "core/jpeg_region_scan.hpp"

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <string>
#include <vector>

#include <jpeglib.h>

namespace pyimgdir {
namespace {

// libjpeg reports fatal errors through error_exit, which must not return. We longjmp
// back into decode_jpeg and turn the message into a DecodeError there, so neither the
// jump nor libjpeg's state ever crosses this file.
struct ErrorMgr {
    jpeg_error_mgr pub;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

void on_error_exit(j_common_ptr cinfo) {
    auto* err = reinterpret_cast<ErrorMgr*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, err->message);
    std::longjmp(err->jump, 1);
}

// Corrupt-data warnings ("extraneous bytes before marker", ...) are counted, not printed.
// TensorFlow decodes such files successfully, so we do too.
void on_output_message(j_common_ptr) {}

// Progressive files may hold any number of scans, and each costs a pass over the whole
// coefficient buffer: a 150 KB file of 10,000 tiny scans keeps a 1-megapixel decode busy for
// seconds, and a larger image for minutes (TensorFlow decodes such files, slowly). Like
// TurboJPEG's scan limit (TJPARAM_SCANLIMIT / TJFLAG_LIMITSCANS, also 500), files with more
// scans are refused; real encoders write about 10.
constexpr int kMaxScans = 500;

// Called by libjpeg between steps of its input loop, i.e. at least once per scan.
void on_progress(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) return;
    const int scan = reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number;
    if (scan > kMaxScans) {
        auto* err = reinterpret_cast<ErrorMgr*>(cinfo->err);
        std::snprintf(err->message, sizeof(err->message),
                      "more than %d scans (a progressive JPEG that would take unreasonably long "
                      "to decode)",
                      kMaxScans);
        std::longjmp(err->jump, 1);
    }
}

// A memory source that treats running out of data as an error, as TensorFlow does
// (libjpeg's own jpeg_mem_src pads a truncated file with a fake EOI and grey pixels).
void src_init(j_decompress_ptr) {}
boolean src_fill(j_decompress_ptr cinfo) {
    static const JOCTET eoi[2] = {0xFF, JPEG_EOI};
    // Called only when all bytes are consumed: the file is truncated. Feed an EOI so libjpeg
    // can finish its current call, and remember that the data ended early.
    cinfo->src->next_input_byte = eoi;
    cinfo->src->bytes_in_buffer = 2;
    cinfo->client_data = reinterpret_cast<void*>(1);
    return TRUE;
}
void src_skip(j_decompress_ptr cinfo, long n) {
    if (n <= 0) return;
    auto* src = cinfo->src;
    while (n > static_cast<long>(src->bytes_in_buffer)) {
        n -= static_cast<long>(src->bytes_in_buffer);
        src_fill(cinfo);
    }
    src->next_input_byte += n;
    src->bytes_in_buffer -= static_cast<size_t>(n);
}
void src_term(j_decompress_ptr) {}

// One decoder per thread. Its libjpeg object is created afresh for every image: libjpeg
// keeps quantization and Huffman tables from one image to the next in the same object (for
// "abbreviated" datastreams), so a file lacking its own tables would silently decode with
// the previous file's, making the outcome depend on which file the thread decoded before.
// TensorFlow starts from a new object each time (a missing quantization table is an error,
// missing Huffman tables are libjpeg's standard ones); so do we.
struct Decoder {
    jpeg_decompress_struct cinfo;
    ErrorMgr err;
    jpeg_source_mgr src;
    jpeg_progress_mgr progress;
    bool created = false;
    std::vector<uint8_t> cmyk_row;
    std::vector<uint8_t> row_mask;

    Decoder() {
        jpeg_std_error(&err.pub);
        err.pub.error_exit = on_error_exit;
        err.pub.output_message = on_output_message;
        progress.progress_monitor = on_progress;
        src.init_source = src_init;
        src.fill_input_buffer = src_fill;
        src.skip_input_data = src_skip;
        src.resync_to_restart = jpeg_resync_to_restart;
        src.term_source = src_term;
    }
    // Call with the error jump set: creating allocates, and allocation failures longjmp.
    void renew() {
        if (created) {
            created = false;
            jpeg_destroy_decompress(&cinfo);
        }
        cinfo.err = &err.pub;  // jpeg_create_decompress zeroes everything else
        jpeg_create_decompress(&cinfo);
        created = true;
        cinfo.progress = &progress;
        cinfo.src = &src;
    }
    ~Decoder() {
        if (created) jpeg_destroy_decompress(&cinfo);
    }
    Decoder(const Decoder&) = delete;
    Decoder& operator=(const Decoder&) = delete;
};

Decoder& thread_decoder() {
    thread_local Decoder dec;
    return dec;
}

// Shorter runs of unneeded rows are decoded anyway: skipping works in whole iMCU rows.
constexpr JDIMENSION kMinSkip = 16;

[[noreturn]] void fail_truncated() {
    throw DecodeError("truncated JPEG data (the file ends before the image is complete)");
}

}  // namespace

void decode_jpeg(const uint8_t* data, size_t size, const DecodeOptions& opts, Image& out) {
    Decoder& dec = thread_decoder();
    jpeg_decompress_struct& cinfo = dec.cinfo;
    if (setjmp(dec.err.jump)) {
        if (dec.created) jpeg_abort_decompress(&cinfo);
        std::string msg = dec.err.message;
        throw DecodeError("invalid JPEG data: " + msg);
    }

    dec.renew();
    cinfo.client_data = nullptr;
    dec.err.pub.num_warnings = 0;
    dec.src.next_input_byte = data;
    dec.src.bytes_in_buffer = size;

    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.client_data) {
        jpeg_abort_decompress(&cinfo);
        fail_truncated();
    }

    const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    const int want = opts.channels;
    if (want == 1) {
        if (cmyk) {  // (with opts.pillow, grey is made from RGB in decode.cpp)
            jpeg_abort_decompress(&cinfo);
            throw DecodeError(
                "a CMYK JPEG cannot be decoded as grayscale (TensorFlow refuses it too); "
                "use color_mode='rgb'");
        }
        cinfo.out_color_space = JCS_GRAYSCALE;
    } else {
        cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    }
    cinfo.dct_method = opts.accurate_dct ? JDCT_ISLOW : JDCT_IFAST;
    cinfo.do_fancy_upsampling = TRUE;
    cinfo.scale_num = 1;
    cinfo.scale_denom = 1;
    DecodeRegion region;
    const bool use_region =
        opts.choose_region && opts.choose_region(opts.region_ctx, static_cast<int>(cinfo.image_height),
                                                 static_cast<int>(cinfo.image_width), region);
    if (use_region) {
        if (region.scale == 2 || region.scale == 4 || region.scale == 8)
            cinfo.scale_denom = static_cast<unsigned>(region.scale);
    } else if (opts.choose_jpeg_scale) {
        const int d = opts.choose_jpeg_scale(opts.scale_ctx, static_cast<int>(cinfo.image_height),
                                             static_cast<int>(cinfo.image_width));
        // Only 1/2, 1/4 and 1/8: the M/8 scales are slower than a full decode.
        if (d == 2 || d == 4 || d == 8) cinfo.scale_denom = static_cast<unsigned>(d);
    }
    jpeg_calc_output_dimensions(&cinfo);

    const int64_t w = cinfo.output_width, h = cinfo.output_height;
    if (w <= 0 || h <= 0) {
        jpeg_abort_decompress(&cinfo);
        throw DecodeError("invalid JPEG dimensions");
    }
    if (static_cast<int64_t>(cinfo.image_width) * cinfo.image_height > opts.max_pixels) {
        jpeg_abort_decompress(&cinfo);
        throw DecodeError("image is " + std::to_string(cinfo.image_width) + "x" +
                          std::to_string(cinfo.image_height) +
                          " pixels, more than the limit of " + std::to_string(opts.max_pixels) +
                          " (max_pixels)");
    }

    if (use_region && (region.y < 0 || region.x < 0 || region.h < 1 || region.w < 1 ||
                       region.y + static_cast<int64_t>(region.h) > h || region.x + static_cast<int64_t>(region.w) > w)) {
        jpeg_abort_decompress(&cinfo);
        throw DecodeError("crop region outside the image");
    }

    // A region at full scale, 1/2 or 1/4: from a smaller JPEG of its MCUs where the file allows
    // (at 1/4 libjpeg on that file beats the entropy-data decoder below; at 1/8 the latter,
    // which skips the luma AC values, is faster; benchmarks/README.md has the figures).
    if (use_region && cinfo.scale_denom <= 4 && opts.jpeg_region_scan) {
        thread_local RegionScan rs;
        if (region_scan(cinfo, data, dec.src.next_input_byte, data + size, region, rs)) {
            const int source_h = static_cast<int>(cinfo.image_height), source_w = static_cast<int>(cinfo.image_width);
            jpeg_abort_decompress(&cinfo);
            // The same region calls on the smaller file, the region moved to its origin.
            DecodeRegion moved = region;
            moved.y -= rs.y;
            moved.x -= rs.x;
            DecodeOptions inner = opts;
            inner.jpeg_region_scan = false;
            inner.jpeg_fast_eighth = inner.jpeg_fast_quarter = false;
            inner.choose_jpeg_scale = nullptr;
            inner.choose_region = [](const void* ctx, int, int, DecodeRegion& r) {
                r = *static_cast<const DecodeRegion*>(ctx);
                return true;
            };
            inner.region_ctx = &moved;
            try {
                decode_jpeg(rs.jpeg.data(), rs.jpeg.size(), inner, out);
            } catch (const DecodeError&) {
                // Not expected (the rewrite copies clean data); the original decides.
                DecodeOptions plain = opts;
                plain.jpeg_region_scan = false;
                decode_jpeg(data, size, plain, out);
                return;
            }
            out.source_height = source_h;
            out.source_width = source_w;
            entropy::index_table().rewrites.fetch_add(1, std::memory_order_relaxed);
            return;
        }
    }

    // 1/8 always; 1/4 for a region (a crop: the rows above it and the MCUs beside it are only
    // walked, which beats libjpeg's full Huffman decode of them), for whole images only when
    // asked (there libjpeg-turbo's own decoder is faster).
    const bool fast = cinfo.scale_denom == 8 ? opts.jpeg_fast_eighth
                      : cinfo.scale_denom == 4 && (opts.jpeg_fast_quarter || (use_region && opts.jpeg_fast_eighth));
    if (fast &&
        decode_jpeg_eighth(cinfo, dec.src.next_input_byte, data + size, want, out, use_region ? &region : nullptr)) {
        out.source_height = static_cast<int>(cinfo.image_height);
        out.source_width = static_cast<int>(cinfo.image_width);
        out.from_dc_terms = true;
        if (use_region) out.region = true;  // the region alone, region_x 0
        jpeg_abort_decompress(&cinfo);
        return;
    }

    jpeg_start_decompress(&cinfo);
    // Output rows [first, last) of the (scaled) image; a region also narrows the columns.
    JDIMENSION first = 0, last = cinfo.output_height;
    int64_t row_w = w;  // decoded pixels per row
    int region_x = 0;   // where the wanted columns start in a decoded row
    if (use_region) {
        // tf.io.decode_and_crop_jpeg's calls: crop_scanline moves the left edge down to an
        // iMCU boundary and widens the row to match; then the rows above are skipped.
        JDIMENSION cx = static_cast<JDIMENSION>(region.x), cw = static_cast<JDIMENSION>(region.w);
        jpeg_crop_scanline(&cinfo, &cx, &cw);
        row_w = cinfo.output_width;
        region_x = region.x - static_cast<int>(cx);
        first = static_cast<JDIMENSION>(region.y);
        last = first + static_cast<JDIMENSION>(region.h);
        if (first > 0 && (jpeg_skip_scanlines(&cinfo, first) != first || cinfo.client_data)) {
            jpeg_abort_decompress(&cinfo);
            fail_truncated();
        }
    }
    const int out_h = static_cast<int>(last - first);
    // CMYK rows are converted into the output one by one, so they keep only the region.
    const bool cmyk_out = cinfo.out_color_space == JCS_CMYK;
    const int64_t out_w = cmyk_out && use_region ? region.w : row_w;
    out.reset(out_h, static_cast<int>(out_w), want);
    out.source_height = static_cast<int>(cinfo.image_height);
    out.source_width = static_cast<int>(cinfo.image_width);
    if (use_region) {
        out.region = true;
        out.region_x = cmyk_out ? 0 : region_x;
        out.region_w = region.w;
    }
    const size_t out_stride = static_cast<size_t>(out_w) * want;
    uint8_t* base = out.data();

    if (cinfo.out_color_space == JCS_CMYK) {
        // TensorFlow's conversion, including its treatment of Adobe's inverted CMYK.
        dec.cmyk_row.resize(static_cast<size_t>(row_w) * 4);
        const bool adobe = cinfo.saw_Adobe_marker;
        const bool pillow = opts.pillow;
        while (cinfo.output_scanline < last) {
            JSAMPROW row = dec.cmyk_row.data();
            const JDIMENSION y = cinfo.output_scanline - first;
            if (jpeg_read_scanlines(&cinfo, &row, 1) != 1 || cinfo.client_data) {
                jpeg_abort_decompress(&cinfo);
                fail_truncated();
            }
            row += 4 * region_x;
            uint8_t* o = base + y * out_stride;
            for (int64_t x = 0; x < out_w; ++x) {
                const int c = row[4 * x], m = row[4 * x + 1], yy = row[4 * x + 2], k = row[4 * x + 3];
                int r, g, b;
                if (pillow) {
                    // Pillow reads every CMYK JPEG as inverted ("CMYK;I"), then cmyk2rgb:
                    // nk - round(C' * nk / 255) with C' = 255 - c and nk = 255 - K' = k.
                    auto mul = [](int a, int b2) { const int t = a * b2 + 128; return ((t >> 8) + t) >> 8; };
                    r = std::max(0, k - mul(255 - c, k));
                    g = std::max(0, k - mul(255 - m, k));
                    b = std::max(0, k - mul(255 - yy, k));
                } else if (adobe) {
                    r = (k * c) / 255;
                    g = (k * m) / 255;
                    b = (k * yy) / 255;
                } else {
                    r = (255 - k) * (255 - c) / 255;
                    g = (255 - k) * (255 - m) / 255;
                    b = (255 - k) * (255 - yy) / 255;
                }
                o[want * x] = static_cast<uint8_t>(r);
                o[want * x + 1] = static_cast<uint8_t>(g);
                o[want * x + 2] = static_cast<uint8_t>(b);
                if (want == 4) o[want * x + 3] = 255;
            }
        }
    } else {
        const int got_c = cinfo.output_components;  // 1 or 3
        const size_t dec_stride = static_cast<size_t>(row_w) * got_c;
        // Rows the resize will never read are skipped (entropy-decoded only, no IDCT,
        // upsampling or colour conversion); the rows that are read come out identical.
        bool skipping = false;
        if (opts.rows_needed && cinfo.scale_denom == 1) {
            dec.row_mask.assign(static_cast<size_t>(out_h), 0);
            skipping = opts.rows_needed(opts.rows_ctx, out_h, use_region ? region.w : static_cast<int>(w),
                                        dec.row_mask.data());
        }
        JSAMPROW rows[16];
        while (cinfo.output_scanline < last) {
            const JDIMENSION y0 = cinfo.output_scanline - first;  // output row
            const JDIMENSION left = last - cinfo.output_scanline;
            if (skipping && !dec.row_mask[y0]) {
                JDIMENSION run = 0;
                while (run < left && !dec.row_mask[y0 + run]) ++run;
                if (run >= kMinSkip) {
                    if (jpeg_skip_scanlines(&cinfo, run) != run || cinfo.client_data) {
                        jpeg_abort_decompress(&cinfo);
                        fail_truncated();
                    }
                    continue;
                }
            }
            const int n = static_cast<int>(std::min<JDIMENSION>(16, left));
            // RGBA: decode RGB into the tail of each row, then expand in place left to right.
            for (int i = 0; i < n; ++i)
                rows[i] = base + (y0 + i) * out_stride + (out_stride - dec_stride);
            const JDIMENSION got = jpeg_read_scanlines(&cinfo, rows, n);
            if (got == 0 || cinfo.client_data) {
                jpeg_abort_decompress(&cinfo);
                fail_truncated();
            }
            if (want == 4) {
                for (JDIMENSION i = 0; i < got; ++i) {
                    uint8_t* o = base + (y0 + i) * out_stride;
                    const uint8_t* s = rows[i];
                    for (int64_t x = 0; x < row_w; ++x) {
                        const uint8_t r = s[3 * x], g = s[3 * x + 1], b = s[3 * x + 2];
                        o[4 * x] = r;
                        o[4 * x + 1] = g;
                        o[4 * x + 2] = b;
                        o[4 * x + 3] = 255;
                    }
                }
            }
        }
    }
    // A file missing only its final EOI marker is accepted, as TensorFlow accepts it. After
    // a region, the rows below it are left undecoded.
    jpeg_abort_decompress(&cinfo);
}

void jpeg_dimensions(const uint8_t* data, size_t size, int& height, int& width) {
    Decoder& dec = thread_decoder();
    jpeg_decompress_struct& cinfo = dec.cinfo;
    if (setjmp(dec.err.jump)) {
        if (dec.created) jpeg_abort_decompress(&cinfo);
        std::string msg = dec.err.message;
        throw DecodeError("invalid JPEG data: " + msg);
    }
    dec.renew();
    cinfo.client_data = nullptr;
    dec.src.next_input_byte = data;
    dec.src.bytes_in_buffer = size;
    jpeg_read_header(&cinfo, TRUE);
    const bool truncated = cinfo.client_data != nullptr;
    height = static_cast<int>(cinfo.image_height);
    width = static_cast<int>(cinfo.image_width);
    jpeg_abort_decompress(&cinfo);
    if (truncated) fail_truncated();
}

}  // namespace pyimgdir
