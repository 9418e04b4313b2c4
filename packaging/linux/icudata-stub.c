/* ICU's "stubdata" (icu4c/source/stubdata/stubdata.cpp): a common-data library with an empty
   table of contents. ICU then looks for data in files (ICU_DATA) and, finding none, its
   data-driven services return U_MISSING_RESOURCE_ERROR; Qt falls back to its own tables. */
#ifndef ICU_MAJOR
#error "ICU_MAJOR must be defined"
#endif
#define PASTE(a, b, c) a##b##c
#define ENTRY(major) PASTE(icudt, major, _dat)

struct icu_data_header {
    unsigned short header_size;
    unsigned char magic1, magic2;
    struct {
        unsigned short size, reserved_word;
        unsigned char is_big_endian, charset_family, sizeof_uchar, reserved_byte;
        unsigned char data_format[4], format_version[4], data_version[4];
    } info;
    char padding[8];
    unsigned int count, reserved;
    struct { unsigned int name_offset, data_offset; } toc[1];
};

__attribute__((visibility("default")))
const struct icu_data_header ENTRY(ICU_MAJOR) = {
    32, 0xda, 0x27,
    {20, 0, 0, 0 /* ASCII family */, 2, 0, {0x54, 0x6f, 0x43, 0x50} /* "ToCP" */,
     {1, 0, 0, 0}, {0, 0, 0, 0}},
    {0}, 0, 0, {{0, 0}}
};
