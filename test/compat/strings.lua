-- strings.lua: the string library, patterns, pack/unpack, utf8, coercions.
local T = require "harness"

T.section "basic"
T.eq(("hello"):sub(2, 4), "ell", "sub middle")
T.eq(("hello"):sub(-3), "llo", "sub negative start")
T.eq(("hello"):sub(2), "ello", "sub open end")
T.eq(("hello"):sub(0), "hello", "sub zero start clamps")
T.eq(("hello"):sub(4, 2), "", "sub empty when i > j")
T.eq(("hello"):sub(-100, 100), "hello", "sub clamps both ends")
T.eq(("hello"):sub(math.mininteger, -4), "he", "sub mininteger start")
T.eq(("MiXeD 123"):upper(), "MIXED 123", "upper")
T.eq(("MiXeD 123"):lower(), "mixed 123", "lower")
T.eq(("ab"):rep(3), "ababab", "rep")
T.eq(("ab"):rep(3, ","), "ab,ab,ab", "rep with separator")
T.eq(("ab"):rep(0), "", "rep zero")
T.eq(("ab"):rep(-1), "", "rep negative")
T.eq(("x"):rep(1, ","), "x", "rep one with separator")
T.eq(("abc"):reverse(), "cba", "reverse")
T.eq(("abc"):len(), 3, "len")
T.eq(#"a\0b", 3, "length counts embedded zero")
T.eq(string.byte("A"), 65, "byte default")
T.eq(select("#", string.byte("abc", 1, -1)), 3, "byte range count")
T.eq(select(3, string.byte("abc", 1, -1)), 99, "byte range last")
T.eq(select("#", string.byte("abc", 10)), 0, "byte out of range gives nothing")
T.eq(string.byte("abc", -1), 99, "byte negative index")
T.eq(string.char(72, 105), "Hi", "char")
T.eq(string.char(), "", "char no args")
T.err("bad argument #1 to 'char' (value out of range)", function () return string.char(256) end, "char out of range")
T.err("bad argument #1 to 'string.char' (value out of range)", string.char, "char out of range via pcall uses global name", 256)
T.err("bad argument #1 to 'char' (value out of range)", function () return string.char(-1) end, "char negative")
T.err("bad argument #1 to 'rep' (string expected, got no value)", function () return string.rep() end, "rep missing arg")
T.err("bad argument #2 to 'rep' (number expected, got no value)", function () return string.rep("x") end, "rep missing count")
T.err("bad argument #2 to 'sub' (number has no integer representation)",
      function () return string.sub("abc", 1.5) end, "sub float index")
T.err("bad argument #1 to 'sub' (number has no integer representation)",
      function () return ("abc"):sub(1.5) end, "sub float index as method")
T.eq(("abc"):sub(2.0), "bc", "sub integral float index")
T.err("bad argument #1 to 'upper' (string expected, got table)", function () return string.upper({}) end, "upper table")
T.err("bad argument #1 to 'string.upper' (string expected, got table)", string.upper, "upper table via pcall", {})
T.eq(string.upper(12), "12", "upper coerces number")
T.eq(string.len(1.5), 3, "len of float coerced")

T.section "format"
T.eq(string.format("%d", 42), "42", "format %d")
T.eq(string.format("%5d|%-5d|%05d", 42, 42, 42), "   42|42   |00042", "format %d widths")
T.eq(string.format("%d", 3.0), "3", "format %d integral float")
T.err("bad argument #2 to 'format' (number has no integer representation)",
      function () return string.format("%d", 3.5) end, "format %d non integral")
T.err("bad argument #1 to 'format' (number has no integer representation)",
      function () return ("%d"):format(3.5) end, "format method call argument numbering")
T.err("bad argument #2 to 'fmt' (number has no integer representation)",
      function () local fmt = string.format; return fmt("%d", 3.5) end, "format through local name")
T.err("bad argument #2 to 'format' (number expected, got string)",
      function () return string.format("%d", "x") end, "format %d string")
T.eq(string.format("%d", "10"), "10", "format %d numeric string")
T.eq(string.format("%5.2f", 3.14159), " 3.14", "format %5.2f")
T.eq(string.format("%.3f", 2/3), "0.667", "format %.3f")
T.eq(string.format("%x", 255), "ff", "format %x")
T.eq(string.format("%X", 255), "FF", "format %X")
T.eq(string.format("%#x", 255), "0xff", "format %#x")
T.eq(string.format("%x", -1), "ffffffffffffffff", "format %x negative")
T.eq(string.format("%o", 8), "10", "format %o")
T.eq(string.format("%s", "hi"), "hi", "format %s")
T.eq(string.format("%s", 1), "1", "format %s integer")
T.eq(string.format("%s", 1.0), "1.0", "format %s float")
T.eq(string.format("%s %s", true, nil), "true nil", "format %s booleans and nil")
T.eq(string.format("%10s|%-4s|", "hi", "x"), "        hi|x   |", "format %s widths")
T.eq(string.format("%.2s", "hello"), "he", "format %s precision")
T.eq(string.format("%s", setmetatable({}, {__tostring = function () return "OBJ" end})),
     "OBJ", "format %s uses __tostring")
T.eq(string.format("%g", 1e20), "1e+20", "format %g large")
T.eq(string.format("%g", 0.1), "0.1", "format %g small")
T.eq(string.format("%g", 100000), "100000", "format %g integer")
T.eq(string.format("%g", 1000000), "1e+06", "format %g million")
T.eq(string.format("%e", 12345.678), "1.234568e+04", "format %e")
T.eq(string.format("%c%c", 76, 117), "Lu", "format %c")
T.eq(string.format("%%"), "%", "format %%")
T.eq(string.format("%a", 1), "0x1p+0", "format %a")
T.eq(string.format("%i", 7), "7", "format %i")
T.eq(string.format("%q", 'a "quoted"\n\0z'), '"a \\"quoted\\"\\\n\\0z"', "format %q string")
T.eq(string.format("%q", "\1\0012\r\t"), '"\\1\\0012\\13\\9"', "format %q control chars")
T.eq(string.format("%q", 10), "10", "format %q integer")
T.eq(string.format("%q", math.mininteger), "0x8000000000000000", "format %q mininteger")
T.eq(string.format("%q", 0.5), "0x1p-1", "format %q float")
T.eq(string.format("%q", 1/0), "1e9999", "format %q inf")
T.eq(string.format("%q", -1/0), "-1e9999", "format %q -inf")
T.eq(string.format("%q", 0/0), "(0/0)", "format %q nan")
T.eq(string.format("%q", true), "true", "format %q boolean")
T.eq(string.format("%q", nil), "nil", "format %q nil")
T.err("bad argument #2 to 'format' (value has no literal form)",
      function () return string.format("%q", {}) end, "format %q table")
T.err("invalid conversion '%y' to 'format'", string.format, "format invalid conversion", "%y", 1)
T.err("bad argument #2 to 'format' (no value)", function () return string.format("%d") end, "format missing argument")
T.err("bad argument #3 to 'format' (no value)", function () return string.format("%d %s", 1) end, "format missing second argument")
T.err("invalid conversion specification: '%123d'", string.format, "format width too long", "%123d", 1)
T.err("specifier '%q' cannot have modifiers", string.format, "format %q with modifier", "%#q", "x")
T.eq(load("return " .. string.format("%q", "\200\n\\x"))(), "\200\n\\x", "format %q round trip")

T.section "find"
T.eq(select(2, ("hello world"):find("o w")), 7, "find plain end")
T.eq(("hello world"):find("o w"), 5, "find plain start")
T.eq(("a.b"):find(".", 1, true), 2, "find plain flag")
T.eq(("a.b"):find("."), 1, "find dot pattern")
T.eq(("abc"):find("x"), nil, "find miss")
T.eq(("abc"):find(""), 1, "find empty pattern")
T.eq(("abc"):find("", 10), nil, "find empty beyond end")
T.eq(("abc"):find("", 4), 4, "find empty at end plus one")
T.eq(("abcabc"):find("b", -3), 5, "find negative init")
T.eq(("hello"):find("^h"), 1, "find anchored start")
T.eq(("hello"):find("^e"), nil, "find anchored fails")
T.eq(("hello"):find("o$"), 5, "find anchored end")
T.eq(("a^b"):find("a^b"), 1, "caret not at start is literal")
T.eq(select(3, ("key=val"):find("(%w+)=(%w+)")), "key", "find returns captures")
T.eq(select(4, ("key=val"):find("(%w+)=(%w+)")), "val", "find second capture")

T.section "match"
T.eq(("  trim me  "):match("^%s*(.-)%s*$"), "trim me", "match trim")
T.eq(("2024-01-15"):match("(%d+)-(%d+)-(%d+)"), "2024", "match date first")
T.eq(select(3, ("2024-01-15"):match("(%d+)-(%d+)-(%d+)")), "15", "match date third")
T.eq(("hello"):match("()ll()"), 3, "position capture start")
T.eq(select(2, ("hello"):match("()ll()")), 5, "position capture end")
T.eq(math.type(("hello"):match("()")), "integer", "position capture is integer")
T.eq(("f(a(b)c)d"):match("%b()"), "(a(b)c)", "balanced match")
T.eq(("THE (quick) fox"):match("%f[%a]%a+", 5), "quick", "frontier word")
T.eq(("THE (quick) fox"):gsub("%f[%w]%w+", "W"), "W (W) W", "frontier gsub")
T.eq(("aaa"):match("a-b"), nil, "lazy no match")
T.eq(("aaab"):match("a-b"), "aaab", "lazy match")
T.eq(("aaab"):match("a*"), "aaa", "greedy star")
T.eq(("b"):match("a?b"), "b", "optional")
T.eq(("xyz"):match("[^x]+"), "yz", "negated set")
T.eq(("a-b"):match("[a%-]+"), "a-", "escaped dash in set")
T.eq(("]x"):match("[]]"), "]", "bracket first in set")
T.eq(("abcabc"):match("(a)(b)c%1%2"), "a", "back reference")
T.eq(("hello"):match(".", -1), "o", "match negative init")
T.eq(("x=1, y=2"):match("y=(%d)"), "2", "match finds later")
T.eq(("a\0b"):match("a%zb"), "a\0b", "deprecated %z still matches zero")
T.eq(("a\0b"):match("a\0b"), "a\0b", "pattern with embedded zero")
T.eq(("%d"):match("%%d"), "%d", "escaped percent")
T.err("malformed pattern (ends with '%')", string.match, "pattern ending with percent", "a", "%")
T.err("malformed pattern (missing ']')", string.match, "pattern missing bracket", "a", "[a")
T.err("missing '[' after '%f' in pattern", string.match, "frontier without set", "a", "%fa")
T.err("invalid capture index %1", string.match, "invalid back reference", "a", "%1")
T.err("unfinished capture", string.match, "unfinished capture", "a", "(a")
T.err("invalid pattern capture", string.match, "unmatched close paren", "a", "a)")
T.err("malformed pattern (missing arguments to '%b')", string.match, "balanced missing args", "a", "%b")

T.section "gmatch"
do
  local words = {}
  for w in ("one two  three"):gmatch("%a+") do words[#words + 1] = w end
  T.eq(table.concat(words, ","), "one,two,three", "gmatch words")
  local pairs_ = {}
  for k, v in ("a=1, b=2"):gmatch("(%w+)=(%w+)") do pairs_[#pairs_ + 1] = k .. v end
  T.eq(table.concat(pairs_, ";"), "a1;b2", "gmatch captures")
  local n = 0
  for _ in ("abc"):gmatch("") do n = n + 1 end
  T.eq(n, 4, "gmatch empty pattern matches n+1 times")
  local out = {}
  for p in ("abcabc"):gmatch("()b", 3) do out[#out + 1] = p end
  T.eq(table.concat(out, ","), "5", "gmatch init argument")
  local seen = {}
  for w in ("aXb^c"):gmatch("^%a") do seen[#seen + 1] = w end
  T.eq(table.concat(seen, ","), "^c", "gmatch treats caret literally")
end

T.section "gsub"
T.eq(select(2, ("hello world"):gsub("o", "0")), 2, "gsub count")
T.eq(("hello world"):gsub("o", "0"), "hell0 w0rld", "gsub result")
T.eq(("hello"):gsub("l", "L", 1), "heLlo", "gsub max replacements")
T.eq(("abc"):gsub("", "-"), "-a-b-c-", "gsub empty pattern")
T.eq(select(2, ("abc"):gsub("", "-")), 4, "gsub empty pattern count")
T.eq(("hello world"):gsub("(%w+)", "<%1>"), "<hello> <world>", "gsub capture reference")
T.eq(("hello"):gsub("l+", "%0%0"), "hellllo", "gsub whole match reference")
T.eq(("abc"):gsub("%w", "%%"), "%%%", "gsub escaped percent")
T.eq(("$name is $age"):gsub("%$(%w+)", {name = "Bob", age = 42}), "Bob is 42", "gsub table")
T.eq(("$x $y"):gsub("%$(%w+)", {x = "1"}), "1 $y", "gsub table missing keeps match")
T.eq(("$x $y"):gsub("%$(%w+)", {x = false}), "$x $y", "gsub table false keeps match")
T.eq(("1 2 3"):gsub("%d", function (d) return d * 2 end), "2 4 6", "gsub function")
T.eq(("a b"):gsub("%w", function () end), "a b", "gsub function nil keeps match")
T.eq(("abc"):gsub("()", "%1"), "1a2b3c4", "gsub position capture")
T.eq(("abc"):gsub(".", {a = 1, b = 2.5}), "12.5c", "gsub table number values")
T.err("invalid replacement value (a table)", string.gsub, "gsub invalid replacement value",
      "abc", "%w", function () return {} end)
T.err("invalid capture index %2", string.gsub,
      "gsub invalid capture in replacement", "abc", "(a)", "%2")
T.err("invalid use of '%' in replacement string", string.gsub, "gsub invalid percent",
      "abc", "a", "%x")
T.err("bad argument #3 to 'gsub' (string/function/table expected, got boolean)",
      function () return string.gsub("a", "a", true) end, "gsub bad replacement type")
T.eq(("hello world from lua"):gsub("(%w+) (%w+)", "%2 %1"), "world hello lua from", "gsub swap")

T.section "pack"
T.eq(string.pack("<i4", 1), "\1\0\0\0", "pack little endian int")
T.eq(string.pack(">i4", 1), "\0\0\0\1", "pack big endian int")
T.eq(string.pack("<i2", -2), "\254\255", "pack negative short")
T.eq(string.unpack("<i2", "\254\255"), -2, "unpack negative short")
T.eq(string.unpack("<I2", "\254\255"), 65534, "unpack unsigned short")
T.eq(select(2, string.unpack("<i4", "\1\0\0\0")), 5, "unpack returns next position")
T.eq(string.pack("z", "ab"), "ab\0", "pack zero terminated")
T.eq(string.pack("s1", "ab"), "\2ab", "pack length prefixed")
T.eq(string.unpack("s1", "\3abc"), "abc", "unpack length prefixed")
T.eq(string.unpack("z", "hi\0rest"), "hi", "unpack zero terminated")
T.eq(string.pack("B", 255), "\255", "pack unsigned byte")
T.eq(string.packsize("i4i8"), 12, "packsize default has no alignment")
T.eq(string.packsize("<i4i8"), 12, "packsize without alignment")
T.eq(string.packsize("!8i4i8"), 16, "packsize with alignment")
T.eq(string.packsize("d"), 8, "packsize double")
T.eq(string.unpack("<d", string.pack("<d", 1.5)), 1.5, "pack double round trip")
T.eq(string.unpack("<f", string.pack("<f", 0.25)), 0.25, "pack float round trip")
T.eq(string.unpack("<j", string.pack("<j", math.mininteger)), math.mininteger, "pack lua integer round trip")
T.eq(string.pack(">I3", 0x010203), "\1\2\3", "pack three byte integer")
T.eq(string.pack("c5", "ab"), "ab\0\0\0", "pack fixed string pads")
T.eq(string.unpack("c2", "abcd"), "ab", "unpack fixed string")
T.eq(select("#", string.unpack("bbb", "\1\2\3")), 4, "unpack multiple values plus position")
T.eq(string.unpack("<i4", "xx\1\0\0\0", 3), 1, "unpack with position")
T.eq(string.unpack("<i16", string.pack("<i16", -3)), -3, "pack wide integer sign extension")
T.err("bad argument #2 to 'pack' (integer overflow)", function () return string.pack("i1", 200) end, "pack overflow")
T.err("bad argument #2 to 'unpack' (data string too short)",
      function () return string.unpack("i4", "ab") end, "unpack short data")
T.err("invalid format option 'y'", string.pack, "pack invalid option", "y", 1)
T.err("bad argument #2 to 'pack' (string longer than given size)",
      function () return string.pack("c2", "abc") end, "pack fixed string too long")
T.err("bad argument #2 to 'pack' (string contains zeros)",
      function () return string.pack("z", "a\0b") end, "pack zero string with zero")
T.err("integral size (17) out of limits [1,16]", string.pack, "pack size out of limits", "i17", 1)
T.err("16-byte integer does not fit into Lua Integer",
      string.unpack, "unpack wide integer not fitting", "<i16", string.rep("\255", 8) .. "\1" .. string.rep("\0", 7))

T.section "utf8"
T.eq(utf8.char(72, 228, 8364, 128512), "H\xC3\xA4\xE2\x82\xAC\xF0\x9F\x98\x80", "utf8.char")
T.eq(utf8.len("H\xC3\xA4\xE2\x82\xAC"), 3, "utf8.len")
T.eq(utf8.len("abc\xFF"), nil, "utf8.len invalid")
T.eq(select(2, utf8.len("abc\xFF")), 4, "utf8.len invalid position")
T.eq(utf8.codepoint("\xE2\x82\xAC"), 8364, "utf8.codepoint")
T.eq(select(2, utf8.codepoint("a\xC3\xA4", 1, -1)), 228, "utf8.codepoint range")
T.eq(utf8.offset("a\xC3\xA4b", 3), 4, "utf8.offset")
T.eq(utf8.offset("a\xC3\xA4b", -1), 4, "utf8.offset negative")
T.eq(utf8.offset("abc", 5), nil, "utf8.offset beyond")
T.eq(utf8.charpattern, "[\0-\x7F\xC2-\xFD][\x80-\xBF]*", "utf8.charpattern")
do
  local cps = {}
  for p, c in utf8.codes("a\xC3\xA4\xE2\x82\xAC") do cps[#cps + 1] = p .. ":" .. c end
  T.eq(table.concat(cps, " "), "1:97 2:228 4:8364", "utf8.codes")
  local n = 0
  for _ in ("a\xC3\xA4\xE2\x82\xAC"):gmatch(utf8.charpattern) do n = n + 1 end
  T.eq(n, 3, "gmatch with charpattern")
end
T.err("invalid UTF-8 code", function () for _ in utf8.codes("a\xFF") do end end, "utf8.codes invalid")
T.err("bad argument #1 to 'char' (value out of range)", function () return utf8.char(-1) end, "utf8.char out of range")
T.err("bad argument #1 to 'utf8.char' (value out of range)", utf8.char, "utf8.char out of range via pcall", -1)
T.eq(utf8.char(0x7FFFFFFF), "\xFD\xBF\xBF\xBF\xBF\xBF", "utf8.char max extended")
T.eq(utf8.len("\xF4\x90\x80\x80"), nil, "utf8.len strict rejects above 10FFFF")
T.eq(utf8.len("\xF4\x90\x80\x80", 1, -1, true), 1, "utf8.len lax accepts above 10FFFF")
T.eq(utf8.len("\xED\xA0\x80"), nil, "utf8.len rejects surrogate")
T.eq("\u{48}\u{20AC}", "H\xE2\x82\xAC", "utf8 escape in literal")
T.err("initial position is a continuation byte", utf8.offset, "utf8.offset continuation byte",
      "\xC3\xA4", 1, 2)

T.section "coercion"
T.eq("10" + 1, 11, "string plus integer")
T.eq("10" + 1.0, 11.0, "string plus float")
T.eq("3.0" + 1, 4.0, "float string plus integer")
T.eq("0x10" * 1, 16, "hex string arithmetic")
T.eq(" 5 " * 2, 10, "string with spaces arithmetic")
T.eq(10 .. 20, "1020", "number concatenation")
T.eq(1.5 .. "", "1.5", "float concatenation")
T.eq(2^53 .. "", "9.007199254741e+15", "large float concatenation")
T.eq(-0.0 .. "", "-0.0", "negative zero concatenation")
T.err("attempt to add a 'string' with a 'number'",
      function () return "abc" + 1 end, "non numeric string arithmetic")
T.err("attempt to unm a 'string' with a 'string'",
      function () local x = "abc"; return -x end, "non numeric string negation")
T.err("attempt to perform bitwise operation on a string value (constant '3')",
      function () return "3" | 1 end, "strings are not coerced for bitwise operators")
T.eq(-"2", -2, "numeric string negation")
T.eq("7" // "2", 3, "string floor division")
T.eq("2" ^ "3", 8.0, "string exponentiation")
T.eq("10" == 10, false, "string not equal to number")
T.eq(("5"):rep(2) + 0, 55, "method result coerced")
T.eq(tostring(10), "10", "tostring integer")
T.eq(tonumber("  0x1p4  "), 16.0, "tonumber hex float")
T.eq(tonumber("z", 36), 35, "tonumber base 36")
T.eq(tonumber("ff", 16), 255, "tonumber base 16")
T.eq(tonumber("8", 8), nil, "tonumber invalid digit for base")
T.eq(tonumber(""), nil, "tonumber empty")
T.eq(tonumber("1e"), nil, "tonumber incomplete exponent")
T.eq("abc" .. 1 .. 2, "abc12", "concat chain")

T.section "comparison"
T.ok("a" < "b", "a < b")
T.ok("abc" < "abd", "abc < abd")
T.ok("ab" < "abc", "prefix is smaller")
T.ok("" < "a", "empty is smallest")
T.ok("Z" < "a", "uppercase before lowercase")
T.ok("a\0b" < "a\0c", "comparison past embedded zero")
T.ok("a\0" > "a", "embedded zero longer string greater")
T.ok("10" < "9", "string comparison is lexicographic")
T.err("attempt to compare number with string", function () return 1 < "2" end, "compare number with string")
T.ok("abc" == "ab" .. "c", "equal strings built differently")

T.section "literals"
T.eq([[
line1
line2]], "line1\nline2", "long string skips first newline")
T.eq([==[a]]b]=]c]==], "a]]b]=]c", "long string with level")
T.eq("\65\066\x43", "ABC", "decimal and hex escapes")
T.eq("a\z
       b", "ab", "\\z skips whitespace")
T.eq("\u{7FF}", "\xDF\xBF", "unicode escape two bytes")
T.eq("tab\there", "tab" .. string.char(9) .. "here", "tab escape")
T.eq("\a\b\f\v", "\7\8\12\11", "control escapes")
T.eq('\'"', "'" .. '"', "quote escapes")
T.eq("a\
b", "a\nb", "backslash newline")
T.eq(select(2, load("return '\\q'")), [[[string "return '\q'"]:1: invalid escape sequence near ''\q']], "invalid escape message")
T.eq(select(2, load("return '\\300'")), [[[string "return '\300'"]:1: decimal escape too large near ''\300'']], "decimal escape too large message")
T.eq(select(2, load("return 'abc")), [[[string "return 'abc"]:1: unfinished string near <eof>]], "unfinished string message")
T.eq(select(2, load("return [[abc")), [[[string "return [[abc"]:1: unfinished long string (starting at line 1) near <eof>]], "unfinished long string message")

T.done()
