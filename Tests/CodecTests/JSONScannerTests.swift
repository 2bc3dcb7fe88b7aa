import Testing
import UtilbotGateway

// MARK: - Helpers

/// A named test document, in the spirit of nst/JSONTestSuite.
struct JSONCase: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]

    init(_ name: String, _ text: String) {
        self.name = name
        self.bytes = Array(text.utf8)
    }

    /// A document with raw (possibly invalid UTF-8) bytes between two pieces of text.
    init(_ name: String, _ prefix: String, raw: [UInt8], _ suffix: String = "") {
        self.name = name
        self.bytes = Array(prefix.utf8) + raw + Array(suffix.utf8)
    }

    var testDescription: String { name }
}

func validationError(_ bytes: [UInt8], maxDepth: Int = JSONScanner.defaultMaxDepth) -> GatewayError? {
    do {
        try JSONScanner.validate(bytes, maxDepth: maxDepth)
        return nil
    } catch {
        return error
    }
}

func validationError(_ text: String, maxDepth: Int = JSONScanner.defaultMaxDepth) -> GatewayError? {
    validationError(Array(text.utf8), maxDepth: maxDepth)
}

func envelope(_ text: String) throws(GatewayError) -> Envelope {
    try JSONScanner.scanEnvelope(Array(text.utf8))
}

func envelopeError(_ text: String) -> GatewayError? {
    do {
        _ = try envelope(text)
        return nil
    } catch {
        return error
    }
}

/// The text of `range` in `text`, compared as bytes.
func slice(_ text: String, _ range: Range<Int>?) -> String? {
    guard let range else {
        return nil
    }
    return String(decoding: Array(text.utf8)[range], as: UTF8.self)
}

// MARK: - Corpus: must pass

let acceptedDocuments: [JSONCase] = [
    JSONCase("y_array_arraysWithSpaces", "[[]   ]"),
    JSONCase("y_array_empty-string", #"[""]"#),
    JSONCase("y_array_empty", "[]"),
    JSONCase("y_array_ending_with_newline", "[\"a\"\n]"),
    JSONCase("y_array_false", "[false]"),
    JSONCase("y_array_heterogeneous", #"[null, 1, "1", {}]"#),
    JSONCase("y_array_null", "[null]"),
    JSONCase("y_array_with_1_and_newline", "[1\n]"),
    JSONCase("y_array_with_leading_space", " [1]"),
    JSONCase("y_array_with_several_null", "[1,null,null,null,2]"),
    JSONCase("y_array_with_trailing_space", "[2] "),
    JSONCase("y_number", "[123e65]"),
    JSONCase("y_number_0e+1", "[0e+1]"),
    JSONCase("y_number_0e1", "[0e1]"),
    JSONCase("y_number_after_space", "[ 4]"),
    JSONCase("y_number_double_close_to_zero", "[-0.000000000000000000000000000000000000000001]"),
    JSONCase("y_number_int_with_exp", "[20e1]"),
    JSONCase("y_number_minus_zero", "[-0]"),
    JSONCase("y_number_negative_int", "[-123]"),
    JSONCase("y_number_negative_one", "[-1]"),
    JSONCase("y_number_negative_zero", "-0"),
    JSONCase("y_number_real_capital_e", "[1E22]"),
    JSONCase("y_number_real_capital_e_neg_exp", "[1E-2]"),
    JSONCase("y_number_real_capital_e_pos_exp", "[1E+2]"),
    JSONCase("y_number_real_exponent", "[123e45]"),
    JSONCase("y_number_real_fraction_exponent", "[123.456e78]"),
    JSONCase("y_number_real_neg_exp", "[1e-2]"),
    JSONCase("y_number_real_pos_exponent", "[1e+2]"),
    JSONCase("y_number_simple_int", "[123]"),
    JSONCase("y_number_simple_real", "[123.456789]"),
    JSONCase("i_number_huge_exp", "1e999999"),
    JSONCase("i_number_huge_integer", "123456789012345678901234567890"),
    JSONCase("i_number_neg_int_huge", "[-123123123123123123123123123123]"),
    JSONCase("i_number_real_pos_overflow", "[1.5e+9999]"),
    JSONCase("i_number_real_neg_overflow", "[-1e+9999]"),
    JSONCase("i_number_very_big_negative_int", "[-237462374673276894279832749832423479823246327846]"),
    JSONCase("y_object_basic", #"{"asd":"sdf"}"#),
    JSONCase("y_object", #"{"asd":"sdf", "dfg":"fgh"}"#),
    JSONCase("y_object_duplicated_key", #"{"a":"b","a":"c"}"#),
    JSONCase("y_object_duplicated_key_and_value", #"{"a":"b","a":"b"}"#),
    JSONCase("y_object_empty", "{}"),
    JSONCase("y_object_empty_key", #"{"":0}"#),
    JSONCase("y_object_escaped_null_in_key", #"{"foo\u0000bar": 42}"#),
    JSONCase("y_object_extreme_numbers", #"{ "min": -1.0e+28, "max": 1.0e+28 }"#),
    JSONCase("y_object_long_strings", #"{"x":[{"id": "xxxxxxxxxxxxxxxxxxxx"}], "id": "xxxxxxxxxxxxxxxxxxxx"}"#),
    JSONCase("y_object_simple", #"{"a":[]}"#),
    JSONCase("y_object_string_unicode", #"{"title":"\u041f\u043e\u043b\u0442\u043e\u0440\u0430" }"#),
    JSONCase("y_object_with_newlines", "{\n\"a\": \"b\"\n}"),
    JSONCase("y_string_1_2_3_bytes_UTF-8_sequences", #"["\u0060\u012a\u12AB"]"#),
    JSONCase("y_string_accepted_surrogate_pair", #"["\uD801\udc37"]"#),
    JSONCase("y_string_accepted_surrogate_pairs", #"["\ud83d\ude39\ud83d\udc8d"]"#),
    JSONCase("y_string_allowed_escapes", #"["\"\\\/\b\f\n\r\t"]"#),
    JSONCase("y_string_backslash_and_u_escaped_zero", #"["\\u0000"]"#),
    JSONCase("y_string_backslash_doublequotes", #"["\""]"#),
    JSONCase("y_string_comments", #"["a/*b*/c/*d//e"]"#),
    JSONCase("y_string_double_escape_a", #"["\\a"]"#),
    JSONCase("y_string_double_escape_n", #"["\\n"]"#),
    JSONCase("y_string_escaped_control_character", #"["\u0012"]"#),
    JSONCase("y_string_escaped_noncharacter", #"["\uFFFF"]"#),
    JSONCase("y_string_in_array", #"["asd"]"#),
    JSONCase("y_string_in_array_with_leading_space", #"[ "asd"]"#),
    JSONCase("y_string_last_surrogates_1_and_2", #"["\uDBFF\uDFFF"]"#),
    JSONCase("y_string_nbsp_uescaped", #"["new\u00A0line"]"#),
    JSONCase("y_string_null_escape", #"["\u0000"]"#),
    JSONCase("y_string_one-byte-utf-8", #"["\u002c"]"#),
    JSONCase("y_string_pi", #"["π"]"#),
    JSONCase("y_string_reservedCharacterInUTF-8_U+1BFFF", "[\"\u{1BFFF}\"]"),
    JSONCase("y_string_simple_ascii", #"["asd "]"#),
    JSONCase("y_string_space", #"" ""#),
    JSONCase("y_string_surrogates_U+1D11E_MUSICAL_SYMBOL_G_CLEF", #"["\uD834\uDd1e"]"#),
    JSONCase("y_string_three-byte-utf-8", #"["\u0821"]"#),
    JSONCase("y_string_two-byte-utf-8", #"["\u0123"]"#),
    JSONCase("y_string_u+2028_line_sep", "[\"\u{2028}\"]"),
    JSONCase("y_string_u+2029_par_sep", "[\"\u{2029}\"]"),
    JSONCase("y_string_uEscape", #"["\u0061\u30af\u30EA\u30b9"]"#),
    JSONCase("y_string_uescaped_newline", #"["new\u000Aline"]"#),
    JSONCase("y_string_unescaped_char_delete", "[\"\u{7F}\"]"),
    JSONCase("y_string_unicode", #"["\uA66D"]"#),
    JSONCase("y_string_unicodeEscapedBackslash", #"["\u005C"]"#),
    JSONCase("y_string_unicode_2", "[\"⍂㈴⍂\"]"),
    JSONCase("y_string_unicode_U+10FFFE_nonchar", #"["\uDBFF\uDFFE"]"#),
    JSONCase("y_string_unicode_U+FDD0_nonchar", #"["\uFDD0"]"#),
    JSONCase("y_string_unicode_U+FFFE_nonchar", #"["\uFFFE"]"#),
    JSONCase("y_string_unicode_escaped_double_quote", #"["\u0022"]"#),
    JSONCase("y_string_utf8", "[\"€𝄞\"]"),
    JSONCase("y_string_raw_max_scalar", "[\"\u{10FFFF}\"]"),
    JSONCase("y_string_with_del_character", "[\"a\u{7F}a\"]"),
    JSONCase(
        "y_string_long_ascii_and_escapes",
        #"["0123456789abcdefghijklmnopqrstuvwxyz\n0123456789ABCDEF\"01234567"]"#
    ),
    JSONCase("y_structure_lonely_false", "false"),
    JSONCase("y_structure_lonely_int", "42"),
    JSONCase("y_structure_lonely_negative_real", "-0.1"),
    JSONCase("y_structure_lonely_null", "null"),
    JSONCase("y_structure_lonely_string", #""asd""#),
    JSONCase("y_structure_lonely_true", "true"),
    JSONCase("y_structure_string_empty", #""""#),
    JSONCase("y_structure_trailing_newline", "[\"a\"]\n"),
    JSONCase("y_structure_true_in_array", "[true]"),
    JSONCase("y_structure_whitespace_array", " [] "),
    JSONCase(
        "y_structure_all_whitespace_kinds",
        "\t\n\r [ \t\n\r1 \t\n\r, \t\n\r{ \t\n\r\"a\" \t\n\r: \t\n\r2 } ]\r\n\t"
    ),
    JSONCase("y_nested_mixed", #"{"a":[1,{"b":[true,false,null,{"c":{}}]},[]],"d":"e"}"#),
]

// MARK: - Corpus: must fail

let rejectedDocuments: [JSONCase] = [
    JSONCase("n_array_1_true_without_comma", "[1 true]"),
    JSONCase("n_array_a_invalid_utf8", "[a", raw: [0xE5], "]"),
    JSONCase("n_array_colon_instead_of_comma", #"["": 1]"#),
    JSONCase("n_array_comma_after_close", #"[""],"#),
    JSONCase("n_array_comma_and_number", "[,1]"),
    JSONCase("n_array_double_comma", "[1,,2]"),
    JSONCase("n_array_double_extra_comma", #"["x",,]"#),
    JSONCase("n_array_extra_close", #"["x"]]"#),
    JSONCase("n_array_extra_comma", #"["",]"#),
    JSONCase("n_array_incomplete", #"["x""#),
    JSONCase("n_array_incomplete_invalid_value", "[x"),
    JSONCase("n_array_inner_array_no_comma", "[3[4]]"),
    JSONCase("n_array_invalid_utf8", "[", raw: [0xFF], "]"),
    JSONCase("n_array_items_separated_by_semicolon", "[1:2]"),
    JSONCase("n_array_just_comma", "[,]"),
    JSONCase("n_array_just_minus", "[-]"),
    JSONCase("n_array_missing_value", #"[   , ""]"#),
    JSONCase("n_array_newlines_unclosed", "[\"a\",\n4\n,1,"),
    JSONCase("n_array_number_and_comma", "[1,]"),
    JSONCase("n_array_number_and_several_commas", "[1,,]"),
    JSONCase("n_array_spaces_vertical_tab_formfeed", "[\"\u{0B}a\"\\f]"),
    JSONCase("n_array_star_inside", "[*]"),
    JSONCase("n_array_unclosed", #"[""#),
    JSONCase("n_array_unclosed_trailing_comma", "[1,"),
    JSONCase("n_array_unclosed_with_new_lines", "[1,\n1\n,1"),
    JSONCase("n_array_unclosed_with_object_inside", "[{}"),
    JSONCase("n_array_missing_comma_between_strings", #"["a" "b"]"#),
    JSONCase("n_array_formfeed_as_whitespace", "[1\u{0C}]"),
    JSONCase("n_incomplete_false", "[fals]"),
    JSONCase("n_incomplete_null", "[nul]"),
    JSONCase("n_incomplete_true", "[tru]"),
    JSONCase("n_literal_capitalized_True", "[True]"),
    JSONCase("n_literal_NULL", "NULL"),
    JSONCase("n_literal_truth", "[truth]"),
    JSONCase("n_literal_nulll", "nulll"),
    JSONCase("n_number_++", "[++1234]"),
    JSONCase("n_number_+1", "[+1]"),
    JSONCase("n_number_+Inf", "[+Inf]"),
    JSONCase("n_number_-01", "[-01]"),
    JSONCase("n_number_-1.0.", "[-1.0.]"),
    JSONCase("n_number_-2.", "[-2.]"),
    JSONCase("n_number_-NaN", "[-NaN]"),
    JSONCase("n_number_.-1", "[.-1]"),
    JSONCase("n_number_.2e-3", "[.2e-3]"),
    JSONCase("n_number_0.1.2", "[0.1.2]"),
    JSONCase("n_number_0.3e+", "[0.3e+]"),
    JSONCase("n_number_0.3e", "[0.3e]"),
    JSONCase("n_number_0.e1", "[0.e1]"),
    JSONCase("n_number_0_capital_E+", "[0E+]"),
    JSONCase("n_number_0_capital_E", "[0E]"),
    JSONCase("n_number_0e+", "[0e+]"),
    JSONCase("n_number_0e", "[0e]"),
    JSONCase("n_number_1.0e+", "[1.0e+]"),
    JSONCase("n_number_1.0e-", "[1.0e-]"),
    JSONCase("n_number_1.0e", "[1.0e]"),
    JSONCase("n_number_1_000", "[1 000.0]"),
    JSONCase("n_number_1eE2", "[1eE2]"),
    JSONCase("n_number_2.e+3", "[2.e+3]"),
    JSONCase("n_number_2.e-3", "[2.e-3]"),
    JSONCase("n_number_2.e3", "[2.e3]"),
    JSONCase("n_number_9.e+", "[9.e+]"),
    JSONCase("n_number_Inf", "[Inf]"),
    JSONCase("n_number_Infinity", "[Infinity]"),
    JSONCase("n_number_minus_infinity", "[-Infinity]"),
    JSONCase("n_number_NaN", "[NaN]"),
    JSONCase("n_number_hex_1_digit", "[0x1]"),
    JSONCase("n_number_hex_2_digits", "[0x42]"),
    JSONCase("n_number_with_leading_zero", "[012]"),
    JSONCase("n_number_leading_zero_top_level", "00"),
    JSONCase("n_number_neg_with_garbage_at_end", "[-1x]"),
    JSONCase("n_number_minus_space_1", "[- 1]"),
    JSONCase("n_number_minus_sign_with_trailing_garbage", "[-foo]"),
    JSONCase("n_number_real_without_fractional_part", "[1.]"),
    JSONCase("n_number_starting_with_dot", "[.123]"),
    JSONCase("n_number_expression", "[1+2]"),
    JSONCase("n_number_invalid-utf-8-in-exponent", "[1e1", raw: [0xE5], "]"),
    JSONCase("n_number_underscore", "[1_000]"),
    JSONCase("n_object_bad_value", #"["x", truth]"#),
    JSONCase("n_object_comma_instead_of_colon", #"{"x", null}"#),
    JSONCase("n_object_double_colon", #"{"x"::"b"}"#),
    JSONCase("n_object_garbage_at_end", #"{"a":"a" 123}"#),
    JSONCase("n_object_key_with_single_quotes", "{key: 'value'}"),
    JSONCase("n_object_missing_colon", #"{"a" b}"#),
    JSONCase("n_object_missing_key", #"{:"b"}"#),
    JSONCase("n_object_missing_semicolon", #"{"a" "b"}"#),
    JSONCase("n_object_missing_value", #"{"a":"#),
    JSONCase("n_object_no-colon", #"{"a""#),
    JSONCase("n_object_non_string_key", "{1:1}"),
    JSONCase("n_object_null_key", "{null:null,null:null}"),
    JSONCase("n_object_repeated_null_null", "{null:null}"),
    JSONCase("n_object_single_quote", "{'a':0}"),
    JSONCase("n_object_trailing_comma", #"{"id":0,}"#),
    JSONCase("n_object_trailing_comment", #"{"a":"b"}/**/"#),
    JSONCase("n_object_trailing_comment_slash", #"{"a":"b"}//"#),
    JSONCase("n_object_comment_inside", #"{"a":/*comment*/"b"}"#),
    JSONCase("n_object_two_commas_in_a_row", #"{"a":"b",,"c":"d"}"#),
    JSONCase("n_object_unquoted_key", #"{a: "b"}"#),
    JSONCase("n_object_unterminated-value", #"{"a":"a"#),
    JSONCase("n_object_with_trailing_garbage", #"{"a": true} "x""#),
    JSONCase("n_object_closed_with_bracket", #"{"a":1]"#),
    JSONCase("n_object_key_only", #"{"a"}"#),
    JSONCase("n_string_1_surrogate_then_escape", #"["\uD800\"]"#),
    JSONCase("n_string_1_surrogate_then_escape_u", #"["\uD800\u"]"#),
    JSONCase("n_string_1_surrogate_then_escape_u1", #"["\uD800\u1"]"#),
    JSONCase("n_string_lone_high_surrogate", #"["\ud800"]"#),
    JSONCase("n_string_lone_low_surrogate", #"["\udc00"]"#),
    JSONCase("n_string_high_surrogate_then_text", #"["\ud800abc"]"#),
    JSONCase("n_string_low_surrogate_then_text", #"["\uDd1ea"]"#),
    JSONCase("n_string_two_high_surrogates", #"["\uD800\uD800"]"#),
    JSONCase("n_string_reversed_surrogate_pair", #"["\uDC00\uD800"]"#),
    JSONCase("n_string_high_surrogate_then_bmp", #"["\uD888\u1234"]"#),
    JSONCase("n_string_high_surrogate_then_newline_escape", #"["\uD800\n"]"#),
    JSONCase("n_string_accentuated_char_no_quotes", "[é]"),
    JSONCase("n_string_backslash_00", "[\"\\", raw: [0x00], "\"]"),
    JSONCase("n_string_escape_x", #"["\x00"]"#),
    JSONCase("n_string_escaped_backslash_bad", #"["\\\"]"#),
    JSONCase("n_string_escaped_ctrl_char_tab", "[\"\\\t\"]"),
    JSONCase("n_string_escaped_emoji", "[\"\\🌀\"]"),
    JSONCase("n_string_escaped_single_quote", #"["\'"]"#),
    JSONCase("n_string_escape_a", #"["\a"]"#),
    JSONCase("n_string_incomplete_escape", #"["\"]"#),
    JSONCase("n_string_incomplete_escaped_character", #"["\u00A"]"#),
    JSONCase("n_string_incomplete_surrogate", #"["\uD834\uDd"]"#),
    JSONCase("n_string_invalid_unicode_escape", #"["\uqqqq"]"#),
    JSONCase("n_string_escape_zero", #"["\0"]"#),
    JSONCase("n_string_unicode_CapitalU", #""\UA66D""#),
    JSONCase("n_string_invalid_utf8_after_escape", "[\"\\", raw: [0xE5], "\"]"),
    JSONCase("n_string_invalid-utf-8-in-escape", "[\"\\u", raw: [0xE5], "\"]"),
    JSONCase("n_string_invalid_utf8_FF", "[\"", raw: [0xFF], "\"]"),
    JSONCase("n_string_invalid_utf8_latin1", "[\"", raw: [0xE9], "\"]"),
    JSONCase("n_string_invalid_utf8_stray_continuation", "[\"a", raw: [0x80], "b\"]"),
    JSONCase("n_string_overlong_2_bytes", "[\"", raw: [0xC0, 0xAF], "\"]"),
    JSONCase("n_string_overlong_C1", "[\"", raw: [0xC1, 0xBF], "\"]"),
    JSONCase("n_string_overlong_3_bytes", "[\"", raw: [0xE0, 0x80, 0xAF], "\"]"),
    JSONCase("n_string_overlong_4_bytes", "[\"", raw: [0xF0, 0x80, 0x80, 0xAF], "\"]"),
    JSONCase("n_string_UTF-8_encoded_surrogate", "[\"", raw: [0xED, 0xA0, 0x80], "\"]"),
    JSONCase("n_string_above_U+10FFFF", "[\"", raw: [0xF4, 0x90, 0x80, 0x80], "\"]"),
    JSONCase("n_string_5_byte_sequence", "[\"", raw: [0xF8, 0x88, 0x80, 0x80, 0x80], "\"]"),
    JSONCase("n_string_truncated_utf8_before_quote", "[\"", raw: [0xE6, 0x97], "\"]"),
    JSONCase("n_string_truncated_utf8_at_end", "[\"", raw: [0xE6, 0x97]),
    JSONCase("n_string_utf8_in_long_ascii_run", "[\"0123456789abcdef", raw: [0xC0, 0x80], "0123456789\"]"),
    JSONCase("n_string_single_quote", "['single quote']"),
    JSONCase("n_string_single_string_no_double_quotes", "abc"),
    JSONCase("n_string_start_escape_unclosed", #"["\"#),
    JSONCase("n_string_unescaped_ctrl_char", "[\"a\u{0}a\"]"),
    JSONCase("n_string_unescaped_newline", "[\"new\nline\"]"),
    JSONCase("n_string_unescaped_tab", "[\"\t\"]"),
    JSONCase("n_string_unescaped_unit_separator", "[\"\u{1F}\"]"),
    JSONCase("n_string_unescaped_tab_after_long_run", "[\"0123456789abcdef0123\t\"]"),
    JSONCase("n_string_with_trailing_garbage", #""" x"#),
    JSONCase("n_string_unterminated", #""abc"#),
    JSONCase("n_structure_angle_bracket_.", "<.>"),
    JSONCase("n_structure_angle_bracket_null", "[<null>]"),
    JSONCase("n_structure_array_trailing_garbage", "[1]x"),
    JSONCase("n_structure_array_with_extra_array_close", "[1]]"),
    JSONCase("n_structure_array_with_unclosed_string", #"["asd]"#),
    JSONCase("n_structure_ascii-unicode-identifier", "aå"),
    JSONCase("n_structure_open_object_open_array", "{["),
    JSONCase("n_structure_close_unopened_array", "1]"),
    JSONCase("n_structure_comma_instead_of_closing_brace", #"{"x": true,"#),
    JSONCase("n_structure_double_array", "[][]"),
    JSONCase("n_structure_end_array", "]"),
    JSONCase("n_structure_end_object", "}"),
    JSONCase("n_structure_no_data", ""),
    JSONCase("n_structure_whitespace_only", " \t\r\n "),
    JSONCase("n_structure_null-byte-outside-string", "[\u{0}]"),
    JSONCase("n_structure_null_byte_after_value", "[]\u{0}"),
    JSONCase("n_structure_number_with_trailing_garbage", "2@"),
    JSONCase("n_structure_object_followed_by_closing_object", "{}}"),
    JSONCase("n_structure_object_unclosed_no_value", #"{"":"#),
    JSONCase("n_structure_object_with_comment", #"{"a":/*comment*/"b"}"#),
    JSONCase("n_structure_open_array_apostrophe", "['"),
    JSONCase("n_structure_open_array_comma", "[,"),
    JSONCase("n_structure_open_object", "{"),
    JSONCase("n_structure_open_object_close_array", "{]"),
    JSONCase("n_structure_open_array_close_object", "[}"),
    JSONCase("n_structure_single_star", "*"),
    JSONCase("n_structure_trailing_#", #"{"a":"b"}#{}"#),
    JSONCase("n_structure_two_top_level_values", "[] []"),
    JSONCase("n_structure_two_top_level_numbers", "1 2"),
    JSONCase("n_structure_UTF8_BOM_no_data", "\u{FEFF}"),
    JSONCase("n_structure_UTF8_BOM_empty_object", "\u{FEFF}{}"),
    JSONCase("n_structure_whitespace_formfeed", "[\u{0C}]"),
    JSONCase("n_structure_whitespace_U+2060_word_joiner", "[\u{2060}]"),
    JSONCase("n_structure_nbsp_as_whitespace", "[\u{A0}1]"),
    JSONCase("n_structure_leading_comment", "/* comment */ []"),
    JSONCase("n_structure_line_comment", "[] // comment"),
    JSONCase("n_structure_lone_colon", ":"),
    JSONCase("n_structure_lone_comma", ","),
    JSONCase("n_structure_lone_minus", "-"),
    JSONCase("n_structure_unicode-identifier", "å"),
    JSONCase("n_structure_uescaped_LF_before_string", #"[\u000A""]"#),
]

@Test(arguments: acceptedDocuments)
func acceptsValidDocument(_ document: JSONCase) {
    #expect(validationError(document.bytes) == nil)
}

@Test(arguments: rejectedDocuments)
func rejectsInvalidDocument(_ document: JSONCase) throws {
    let error = try #require(validationError(document.bytes))
    #expect(error.code == .invalidJSON)
    #expect(error.message.hasPrefix("invalid JSON at byte "), "\(error.message)")
}

@Test func corpusIsLargeEnough() {
    #expect(acceptedDocuments.count >= 60)
    #expect(rejectedDocuments.count >= 80)
    #expect(Set(acceptedDocuments.map(\.bytes)).count == acceptedDocuments.count)
}

@Test func validatesThroughRawBufferEntryPoint() throws {
    let text = Array(#"{"a":[1,2,{"b":null}]}"#.utf8)
    try text.withUnsafeBytes { buffer in try JSONScanner.validate(buffer) }
    let empty = UnsafeRawBufferPointer(start: nil, count: 0)
    #expect(throws: GatewayError(.invalidJSON, "invalid JSON at byte 0: expected a value, found end of input")) {
        try JSONScanner.validate(empty)
    }
}

// MARK: - Exact error messages

@Test(
    arguments: [
        ("", "invalid JSON at byte 0: expected a value, found end of input"),
        ("   ", "invalid JSON at byte 3: expected a value, found end of input"),
        ("[1,]", "invalid JSON at byte 3: expected a value, found ']'"),
        ("01", "invalid JSON at byte 1: leading zeros are not allowed"),
        ("[-012]", "invalid JSON at byte 3: leading zeros are not allowed"),
        ("[1 2]", "invalid JSON at byte 3: expected ',' or ']' after an array element, found '2'"),
        (#"{"a" 1}"#, "invalid JSON at byte 5: expected ':' after an object key, found '1'"),
        (#"{"a":1,}"#, "invalid JSON at byte 7: expected a string key, found '}'"),
        ("{1:1}", "invalid JSON at byte 1: expected a string key or '}', found '1'"),
        (#"{"a":1]"#, "invalid JSON at byte 6: expected ',' or '}' after an object member, found ']'"),
        (
            #""abc"#,
            "invalid JSON at byte 4: expected '\"' to close the string that starts at byte 0, found end of input"
        ),
        (
            #"["\x"]"#,
            "invalid JSON at byte 3: invalid escape character; expected one of \" \\ / b f n r t u, found 'x'"
        ),
        (#"["\ud800"]"#, "invalid JSON at byte 2: unpaired high surrogate escape"),
        (#"["\udc00"]"#, "invalid JSON at byte 2: unpaired low surrogate escape"),
        (#"["\ud800\u0041"]"#, "invalid JSON at byte 8: expected a low surrogate escape after a high surrogate"),
        (#"["\u12G4"]"#, "invalid JSON at byte 6: expected a hex digit in a '\\u' escape, found 'G'"),
        ("[\"a\tb\"]", "invalid JSON at byte 3: control characters must be escaped in strings, found byte 0x09"),
        ("tru", "invalid JSON at byte 3: expected the literal 'true', found end of input"),
        ("nul1", "invalid JSON at byte 3: expected the literal 'null', found '1'"),
        ("[] x", "invalid JSON at byte 3: expected end of input after the top-level value, found 'x'"),
        ("-", "invalid JSON at byte 1: expected a digit, found end of input"),
        ("1.", "invalid JSON at byte 2: expected a digit after '.', found end of input"),
        ("1e+", "invalid JSON at byte 3: expected a digit in the exponent, found end of input"),
        ("\u{FEFF}[]", "invalid JSON at byte 0: expected a value, found byte 0xEF"),
    ] as [(String, String)])
func exactErrorMessage(document: String, message: String) {
    #expect(validationError(document) == GatewayError(.invalidJSON, message))
}

@Test func exactErrorMessagesForInvalidUTF8() {
    #expect(
        validationError(Array(#"["ab"#.utf8) + [0xFF] + Array(#""]"#.utf8))
            == GatewayError(.invalidJSON, "invalid JSON at byte 4: invalid UTF-8 in string, found byte 0xFF")
    )
    #expect(
        validationError(Array(#"["é"#.utf8) + [0xED, 0xA0, 0x80] + Array(#""]"#.utf8))
            == GatewayError(.invalidJSON, "invalid JSON at byte 5: invalid UTF-8 in string, found byte 0xA0")
    )
    #expect(
        validationError(Array(#"[""#.utf8) + [0xE2, 0x82] + Array(#""]"#.utf8))
            == GatewayError(.invalidJSON, "invalid JSON at byte 4: truncated UTF-8 sequence in string, found '\"'")
    )
}

// MARK: - Depth

private func nestedArrays(_ depth: Int) -> String {
    String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
}

@Test func nestingAtTheLimitPassesAndOneMoreFails() {
    #expect(validationError(nestedArrays(64)) == nil)
    #expect(
        validationError(nestedArrays(65))
            == GatewayError(.invalidJSON, "invalid JSON at byte 64: nesting deeper than the limit of 64")
    )
    let objects64 = String(repeating: #"{"a":"#, count: 63) + "{}" + String(repeating: "}", count: 63)
    #expect(validationError(objects64) == nil)
    let objects65 = String(repeating: #"{"a":"#, count: 64) + "{}" + String(repeating: "}", count: 64)
    #expect(
        validationError(objects65)
            == GatewayError(.invalidJSON, "invalid JSON at byte 320: nesting deeper than the limit of 64")
    )
    #expect(validationError(nestedArrays(3), maxDepth: 3) == nil)
    #expect(validationError(nestedArrays(4), maxDepth: 3)?.message.contains("limit of 3") == true)
    #expect(validationError("5", maxDepth: 0) == nil)
    #expect(validationError("[]", maxDepth: 0)?.message == "invalid JSON at byte 0: nesting deeper than the limit of 0")
}

@Test func deepHostileNestingFailsCleanly() {
    let hostile = String(repeating: "[", count: 100_000)
    #expect(
        validationError(hostile)
            == GatewayError(.invalidJSON, "invalid JSON at byte 64: nesting deeper than the limit of 64")
    )
    // Even with no effective limit the scanner does not recurse: it runs out of input instead.
    #expect(
        validationError(hostile, maxDepth: .max)
            == GatewayError(.invalidJSON, "invalid JSON at byte 100000: expected a value, found end of input")
    )
    #expect(validationError(nestedArrays(100_000), maxDepth: 100_000) == nil)
    #expect(validationError(String(repeating: #"{"":"#, count: 100_000)) != nil)
}

@Test func containerKindsAreTrackedBeyondSixtyFourLevels() {
    // Alternate arrays and objects 150 deep so that the bit stack's overflow words are exercised.
    var open = ""
    var close = ""
    for level in 0..<150 {
        if level % 2 == 0 {
            open += "["
            close = "]" + close
        } else {
            open += #"{"k":"#
            close = "}" + close
        }
    }
    #expect(validationError(open + "1" + close, maxDepth: 150) == nil)
    #expect(validationError(open + "1" + close, maxDepth: 149) != nil)
    // close[k] is the closer of level 149 - k. Level 100 is an array and level 101 an object (both beyond
    // the 64 levels held inline); the wrong closer for either must fail right there.
    let chars = Array(close)
    let base = open.utf8.count + 1
    var wrongArray = chars
    wrongArray[49] = "}"
    #expect(
        validationError(open + "1" + String(wrongArray), maxDepth: 150)
            == GatewayError(
                .invalidJSON,
                "invalid JSON at byte \(base + 49): expected ',' or ']' after an array element, found '}'"
            )
    )
    var wrongObject = chars
    wrongObject[48] = "]"
    #expect(
        validationError(open + "1" + String(wrongObject), maxDepth: 150)
            == GatewayError(
                .invalidJSON,
                "invalid JSON at byte \(base + 48): expected ',' or '}' after an object member, found ']'"
            )
    )
}

// MARK: - Envelope

@Test func envelopeBasic() throws {
    let text = #"{"op":0,"t":"READY","d":{"session":"abc","n":[1,2]}}"#
    let result = try envelope(text)
    #expect(result == Envelope(op: 0, t: "READY", e: nil, m: nil, d: 24..<51))
    #expect(slice(text, result.d) == #"{"session":"abc","n":[1,2]}"#)
}

@Test func envelopeErrorMessage() throws {
    let text = #" { "op" : -1 , "e" : 4001 , "m" : "bad \"request\"" , "d" : {"errors":[{"field":"t"}]} } "#
    let result = try envelope(text)
    #expect(result.op == -1)
    #expect(result.t == nil)
    #expect(result.e == 4001)
    #expect(result.m == #"bad "request""#)
    #expect(slice(text, result.d) == #"{"errors":[{"field":"t"}]}"#)
}

@Test func envelopeDAbsentNullAndScalars() throws {
    #expect(try envelope(#"{"op":1}"#) == Envelope(op: 1))
    let withNull = #"{"op":1,"d":null}"#
    let nullResult = try envelope(withNull)
    #expect(nullResult.d == 12..<16)
    #expect(slice(withNull, nullResult.d) == "null")
    for value in [#""text \" with quote""#, "-12.5e3", "true", "false", "[]", "[1,[2,{}]]", "{}", "0"] {
        let text = #"{"d":"# + value + #"  ,"op":2}"#
        #expect(slice(text, try envelope(text).d) == value)
    }
    let last = #"{"op":2,"d":[1, 2, 3]}"#
    #expect(slice(last, try envelope(last).d) == "[1, 2, 3]")
}

@Test func envelopeNullFields() throws {
    #expect(try envelope(#"{"op":3,"t":null,"e":null,"m":null}"#) == Envelope(op: 3))
}

@Test func envelopeEscapedKeysAndValues() throws {
    let text = #"{"\u006fp":7,"\u0074":"MESSAGE_\u0043REATE","\u006D":"tab\there \ud83d\ude00 \u00e9\/\\","d":1}"#
    let result = try envelope(text)
    #expect(result.op == 7)
    #expect(result.t == "MESSAGE_CREATE")
    #expect(result.m == "tab\there 😀 é/\\")
    #expect(slice(text, result.d) == "1")
    // Keys that only look similar are ignored.
    #expect(try envelope(#"{"op":1,"o\u0070x":2,"T":"no","op ":3,"tt":"x","\u0064\u0064":4}"#) == Envelope(op: 1))
}

@Test func envelopeSurrogatePairsAndAllEscapesDecode() throws {
    let result = try envelope(
        #"{"op":1,"t":"\ud83d\ude00","m":"\"\\\/\b\f\n\r\t\u0000\u001F\u00A0\u20AC\uD834\uDD1E"}"#
    )
    #expect(result.t == "😀")
    #expect(result.m == "\"\\/\u{8}\u{C}\n\r\t\u{0}\u{1F}\u{A0}€𝄞")
    #expect(try envelope(#"{"op":1,"t":"plain é 😀"}"#).t == "plain é 😀")
    #expect(try envelope(#"{"op":1,"t":""}"#).t == "")
}

@Test func envelopeNestedOpIsNotTopLevel() throws {
    let text = #"{"d":{"op":9,"t":"inner","e":5,"m":"x","d":[]},"op":1}"#
    let result = try envelope(text)
    #expect(result == Envelope(op: 1, t: nil, e: nil, m: nil, d: 5..<46))
    #expect(slice(text, result.d) == #"{"op":9,"t":"inner","e":5,"m":"x","d":[]}"#)
    #expect(
        envelopeError(#"{"d":{"op":9}}"#)
            == GatewayError(.invalidJSON, #"invalid envelope: missing required field "op""#)
    )
    #expect(try envelope(#"{"x":[{"op":5}],"op":6}"#).op == 6)
}

@Test func envelopeDuplicateKeysLastWins() throws {
    let text = #"{"op":1,"t":"a","d":[1],"op":2,"t":null,"d":{"x":2},"e":1,"e":null,"m":null,"m":"z"}"#
    let result = try envelope(text)
    #expect(result.op == 2)
    #expect(result.t == nil)
    #expect(result.e == nil)
    #expect(result.m == "z")
    #expect(slice(text, result.d) == #"{"x":2}"#)
    // An invalid earlier duplicate is overridden too.
    #expect(try envelope(#"{"op":"x","op":4}"#).op == 4)
}

@Test func envelopeIntegerRange() throws {
    #expect(try envelope(#"{"op":9223372036854775807}"#).op == Int.max)
    #expect(try envelope(#"{"op":-9223372036854775808}"#).op == Int.min)
    #expect(try envelope(#"{"op":-0}"#).op == 0)
    #expect(try envelope(#"{"op":0,"e":-40}"#).e == -40)
    #expect(
        envelopeError(#"{"op":9223372036854775808}"#)
            == GatewayError(.invalidJSON, #"invalid envelope at byte 6: "op" is out of range for a 64-bit integer"#)
    )
    #expect(
        envelopeError(#"{"op":-9223372036854775809}"#)
            == GatewayError(.invalidJSON, #"invalid envelope at byte 6: "op" is out of range for a 64-bit integer"#)
    )
    #expect(
        envelopeError(#"{"op":1,"e":123456789012345678901234567890}"#)
            == GatewayError(.invalidJSON, #"invalid envelope at byte 12: "e" is out of range for a 64-bit integer"#)
    )
}

@Test(
    arguments: [
        // op must be a plain integer; strings, fractions and exponents are rejected even when integral.
        (#"{"t":"x"}"#, #"invalid envelope: missing required field "op""#),
        ("{}", #"invalid envelope: missing required field "op""#),
        (#"{"op":"5"}"#, #"invalid envelope at byte 6: "op" must be an integer, found a string"#),
        (#"{"op":1.5}"#, #"invalid envelope at byte 6: "op" must be a plain integer without fraction or exponent"#),
        (#"{"op":1e2}"#, #"invalid envelope at byte 6: "op" must be a plain integer without fraction or exponent"#),
        (#"{"op":1.0}"#, #"invalid envelope at byte 6: "op" must be a plain integer without fraction or exponent"#),
        (#"{"op":null}"#, #"invalid envelope at byte 6: "op" must be an integer, found null"#),
        (#"{"op":true}"#, #"invalid envelope at byte 6: "op" must be an integer, found a boolean"#),
        (#"{"op":[1]}"#, #"invalid envelope at byte 6: "op" must be an integer, found an array"#),
        (#"{"op":{}}"#, #"invalid envelope at byte 6: "op" must be an integer, found an object"#),
        (#"{"op":1,"t":5}"#, #"invalid envelope at byte 12: "t" must be a string or null, found an integer"#),
        (#"{"op":1,"t":{}}"#, #"invalid envelope at byte 12: "t" must be a string or null, found an object"#),
        (#"{"op":1,"m":false}"#, #"invalid envelope at byte 12: "m" must be a string or null, found a boolean"#),
        (#"{"op":1,"e":"4001"}"#, #"invalid envelope at byte 12: "e" must be an integer or null, found a string"#),
        (
            #"{"op":1,"e":40.5}"#,
            #"invalid envelope at byte 12: "e" must be a plain integer without fraction or exponent"#
        ),
        ("[]", "invalid envelope: the top-level value must be an object"),
        ("5", "invalid envelope: the top-level value must be an object"),
        (#""op""#, "invalid envelope: the top-level value must be an object"),
        // Syntax errors are reported before envelope errors.
        (#"{"op":"5",}"#, #"invalid JSON at byte 10: expected a string key, found '}'"#),
        (#"[1,"#, "invalid JSON at byte 3: expected a value, found end of input"),
        (#"{"op":1} {}"#, "invalid JSON at byte 9: expected end of input after the top-level value, found '{'"),
    ] as [(String, String)])
func envelopeErrors(document: String, message: String) {
    #expect(envelopeError(document) == GatewayError(.invalidJSON, message))
}

@Test func envelopeMaxDepth() throws {
    let text = Array(#"{"op":1,"d":[[[]]]}"#.utf8)
    #expect(try JSONScanner.scanEnvelope(text, maxDepth: 4).d == 12..<18)
    #expect(throws: GatewayError(.invalidJSON, "invalid JSON at byte 14: nesting deeper than the limit of 3")) {
        try JSONScanner.scanEnvelope(text, maxDepth: 3)
    }
}

@Test func envelopeFromRawBuffer() throws {
    let text = Array(#"{"op":11,"t":"HEARTBEAT_ACK"}"#.utf8)
    let result = try text.withUnsafeBytes { buffer in try JSONScanner.scanEnvelope(buffer) }
    #expect(result == Envelope(op: 11, t: "HEARTBEAT_ACK"))
}

// MARK: - Round trip with the writer

@Test func writerOutputScansBackToTheSameStrings() throws {
    let controls = String(String.UnicodeScalarView((0..<0x20).map { Unicode.Scalar(UInt8($0)) }))
    let samples = [
        controls,
        #"quotes " and "" backslashes \ \\ \" "#,
        "non-ASCII: é ß ñ Ω Ж 中文 日本語 \u{7F} \u{80} \u{FEFF} \u{FFFF} \u{2028}",
        "emoji: 😀 👍🏽 👨‍👩‍👧‍👦 🇺🇳 \u{10FFFF}",
        "",
        "/ slash and \u{0}NUL",
        String(repeating: "long run of plain ASCII text ", count: 20) + "\n\"",
    ]
    for t in samples {
        for m in samples {
            var writer = JSONWriter()
            writer.beginObject()
            writer.key("op")
            writer.int(-1)
            writer.key("t")
            writer.string(t)
            writer.key("m")
            writer.string(m)
            writer.key("d")
            writer.beginArray()
            writer.string(t)
            writer.endArray()
            writer.endObject()
            let result = try JSONScanner.scanEnvelope(writer.bytes)
            #expect(result.op == -1)
            #expect(result.t == t)
            #expect(result.m == m)
            #expect(result.e == nil)
        }
        let payload = JSONWriter.payload(op: 0, t: t, d: nil)
        #expect(try JSONScanner.scanEnvelope(payload) == Envelope(op: 0, t: t))
    }
}

// MARK: - The fast path

private func fastEnvelope(_ bytes: [UInt8], maxDepth: Int = JSONScanner.defaultMaxDepth) -> Envelope? {
    bytes.withUnsafeBytes { FastJSONScanner($0, maxDepth: maxDepth).scanEnvelope(knownName: nil) }
}

private func fastValidate(_ bytes: [UInt8], maxDepth: Int = JSONScanner.defaultMaxDepth) -> Bool? {
    bytes.withUnsafeBytes { FastJSONScanner($0, maxDepth: maxDepth).validate() }
}

/// Every document of the corpus, alone and as the `d` of an envelope: the fast path answers only
/// what the general scanner accepts, with the same envelope, and never a rejected document.
@Test(arguments: acceptedDocuments + rejectedDocuments)
func fastPathNeverDisagreesWithTheGeneralScanner(_ document: JSONCase) throws {
    for maxDepth in [JSONScanner.defaultMaxDepth, 2, 3] {
        let valid = validationError(document.bytes, maxDepth: maxDepth) == nil
        if fastValidate(document.bytes, maxDepth: maxDepth) == true {
            #expect(valid, "the fast path accepted what the general scanner refuses")
        }
        let wrapped = Array(#"{"op":0,"t":"X","d":"#.utf8) + document.bytes + Array("}".utf8)
        let general = try? JSONScanner.scanEnvelope(wrapped, maxDepth: maxDepth, fastPath: false)
        if let fast = fastEnvelope(wrapped, maxDepth: maxDepth) {
            #expect(fast == general)
        }
    }
}

/// The messages a gateway sends every day take the fast path, escapes and non-ASCII text
/// included; the general scanner agrees with it on each.
@Test(
    arguments: [
        #"{"op":5,"d":{"heartbeat":45000}}"#,
        #"{"op":11}"#,
        #"{"op":0,"t":"GLOBAL_GUILD_COUNT","d":{"guilds":12,"guildMembers":-3,"cachedGuildMembers":0}}"#,
        #"{"op":0,"t":"bot_connect_success","d":null}"#,
        #"{"op":-1,"e":4001,"m":"bad \"key\"","d":{"x":[1.5e3,true,false,null,"\u00e9\n",{}]}}"#,
        #" { "op" : 0 , "t" : "caf\u00e9" , "d" : [ ] , "extra" : { "op" : 9 } } "#,
        "{\"op\":0,\"t\":\"NAMÉ\",\"d\":{\"text\":\"żółć 😀\"},\"e\":null,\"m\":null}",
        #"{"op":1,"op":2,"t":"A","t":"B"}"#,
    ])
func everydayMessagesTakeTheFastPath(_ text: String) throws {
    let bytes = Array(text.utf8)
    let fast = try #require(fastEnvelope(bytes))
    #expect(fast == (try JSONScanner.scanEnvelope(bytes, fastPath: false)))
    #expect(fastValidate(bytes) == true)
}

/// What the fast path leaves to the general scanner: an escaped top-level key, a surrogate
/// escape, a wrong-typed field, an integer out of range, a syntax error.
@Test(
    arguments: [
        #"{"\u006fp":1}"#,
        #"{"op":1,"t":"\ud83d\ude00"}"#,
        #"{"op":"1"}"#,
        #"{"op":1,"e":1.5}"#,
        #"{"op":99999999999999999999}"#,
        #"{"op":1,}"#,
        #"{"op":1,"d":[01]}"#,
    ])
func unusualMessagesAreLeftToTheGeneralScanner(_ text: String) {
    #expect(fastEnvelope(Array(text.utf8)) == nil)
}
