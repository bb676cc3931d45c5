-- errors.lua: error, pcall, xpcall, and the messages of runtime errors.
local T = require "harness"

-- the script name that positions in error messages from this file start with
local SRC = debug.getinfo(1, "S").short_src

local function here() return debug.getinfo(2, "l").currentline end

T.section "error values"
do
  local ok, e = pcall(error, "plain", 0)
  T.eq(ok, false, "pcall returns false on error")
  T.eq(e, "plain", "level 0 adds no position")
  local line = here(); local _, e1 = pcall(function () error("lvl1") end)
  T.eq(e1, SRC .. ":" .. line .. ": lvl1", "level 1 adds position of error call")
  local function thrower() error("lvl2", 2) end
  line = here(); local _, e2 = pcall(function () thrower() end)
  T.eq(e2, SRC .. ":" .. line .. ": lvl2", "level 2 adds position of caller")
  local t = {code = 42}
  local _, e3 = pcall(error, t)
  T.eq(e3, t, "table error object passed unchanged")
  local _, e4 = pcall(error)
  T.eq(e4, nil, "error without value")
  local _, e5 = pcall(error, 3.5)
  T.eq(e5, 3.5, "number error value kept as number")
  local _, e6 = pcall(function () error(7) end)
  T.eq(e6, 7, "number error gets no position")
  local _, e7 = pcall(function () error(setmetatable({}, {__tostring = function () return "TS" end})) end)
  T.eq(tostring(e7), "TS", "error object with __tostring")
  local _, e8 = pcall(error, false)
  T.eq(e8, false, "false as error value")
  local ok9, e9 = pcall(function () local ok, e = pcall(error, "inner", 0); error(e .. "+outer", 0) end)
  T.eq(e9, "inner+outer", "rethrow from nested pcall")
  T.eq(select("#", pcall(function () return 1, 2, 3 end)), 4, "pcall returns true plus results")
  T.eq(select("#", pcall(error)), 2, "pcall failure returns two values")
end

T.section "xpcall"
do
  local ok, v = xpcall(function () error("bad", 0) end, function (m) return "handled: " .. m end)
  T.eq(ok, false, "xpcall returns false")
  T.eq(v, "handled: bad", "xpcall handler result")
  local ok2, a, b = xpcall(function (x, y) return x + y, "second" end, print, 2, 3)
  T.eq(a, 5, "xpcall passes arguments")
  T.eq(b, "second", "xpcall returns all results")
  local tb
  local tbline = here(); xpcall(function () error("trace me") end, function (m) tb = debug.traceback(m, 1) end)
  T.ok(tb:find(SRC .. ":" .. tbline .. ": trace me\nstack traceback:\n", 1, true) == 1, "traceback starts with message")
  T.ok(tb:find("\n\t[C]: in function 'error'\n", 1, true) ~= nil, "traceback lists the error function")
  local lvl
  xpcall(function () local x = nil; return x.y end, function (m) lvl = m end)
  T.ok(lvl:find("attempt to index a nil value (local 'x')", 1, true) ~= nil, "handler receives runtime error")
  local ok3, e3 = xpcall(function () error("first", 0) end, function () error("in handler", 0) end)
  T.eq(ok3, false, "error in handler still returns false")
  T.eq(type(e3), "string", "error in handler yields a message")
  local ok4, e4 = xpcall(function () error({}) end, function (e) return type(e) end)
  T.eq(e4, "table", "handler receives error object")
  T.err("bad argument #2 to 'xpcall' (function expected, got no value)", function () return xpcall(print) end,
        "xpcall without handler")
  local ok5, e5 = xpcall(error, debug.traceback, "msg", 0)
  T.ok(e5:find("^msg\nstack traceback:") ~= nil, "debug.traceback as handler")
  T.eq(debug.traceback("x", 1):match("^x\nstack traceback:\n") ~= nil, true, "traceback with message")
  T.eq(debug.traceback({}) ~= nil and type(debug.traceback({})), "table", "traceback of table returns it")
  T.ok(debug.traceback(12):find("^12\nstack traceback:") ~= nil, "traceback converts number message")
  T.ok(debug.traceback(nil):find("^stack traceback:") ~= nil, "traceback of nil has no message line")
end

T.section "runtime messages"
do
  T.err("attempt to call a nil value (global 'undefinedfunction')", function () undefinedfunction() end,
        "call nil global")
  T.err("attempt to call a nil value (local 'f')", function () local f; f() end, "call nil local")
  T.err("attempt to call a nil value (field 'nofield')", function () local t = {}; t.nofield() end,
        "call nil field")
  T.err("attempt to call a nil value (method 'm')", function () local t = {}; t:m() end, "call nil method")
  T.err("attempt to call a number value (field 'integer index')", function () local t = {1}; t[1]() end, "call number in array")
  T.err("attempt to call a string value (upvalue 's')",
        (function () local s = "x"; return function () s() end end)(), "call string upvalue")
  T.err("attempt to index a nil value (field 'x')", function () local t = {}; return t.x.y end,
        "index nil field")
  T.err("attempt to index a nil value (global 'noglobal')", function () return noglobal.x end,
        "index nil global")
  T.err("attempt to index a nil value (local 'v')", function () local v; v.x = 1 end, "assign into nil local")
  T.err("attempt to index a boolean value (upvalue 'b')",
        (function () local b = true; return function () return b.x end end)(), "index boolean upvalue")
  T.err("attempt to index a number value (field 'integer index')", function () local t = {1}; return t[1].x end,
        "index number from array")
  T.err("attempt to compare number with nil", function () local a; return 1 < a end, "compare number with nil")
  T.err("attempt to compare nil with number", function () local a; return a < 1 end, "compare nil with number")
  T.err("attempt to compare string with number", function () return "a" < 1 end, "compare string with number")
  T.err("attempt to compare table with number", function () return {} < 1 end, "compare table with number")
  T.err("attempt to compare two table values", function () return {} <= {} end, "compare two tables")
  T.err("attempt to compare number with boolean", function () return true > 1 end, "compare boolean with number")
  T.err("attempt to concatenate a nil value (local 'x')", function () local x; return "a" .. x end,
        "concatenate nil local")
  T.err("attempt to concatenate a nil value (field 'name')", function () local t = {}; return "a" .. t.name end,
        "concatenate nil field")
  T.err("attempt to concatenate a table value (global 'string')", function () return "a" .. string end,
        "concatenate table global")
  T.err("attempt to perform arithmetic on a nil value (global 'nothing')", function () return nothing + 1 end,
        "arithmetic on nil global")
  T.err("attempt to perform arithmetic on a nil value (field 'count')",
        function () local t = {}; t.count = t.count + 1 end, "increment missing field")
  T.err("attempt to perform arithmetic on a boolean value (local 'flag')",
        function () local flag = true; return -flag end, "negate boolean")
  T.err("attempt to get length of a nil value (local 'n')", function () local n; return #n end, "length of nil")
  T.err("attempt to get length of a boolean value (global 'gb')",
        function () gb = false; local r = #gb; return r end, "length of boolean global")
  gb = nil
  T.err("bad 'for' initial value (number expected, got string)", function () for i = "a", 2 do end end, "for with string start")
  T.err("bad 'for' limit (number expected, got table)", function () for i = 1, {} do end end, "for with table limit")
  T.err("bad 'for' step (number expected, got boolean)", function () for i = 1, 2, true do end end, "for with boolean step")
  T.err("'for' step is zero", function () for i = 1, 10, 0 do end end, "for step zero")
  T.err("attempt to call a nil value (for iterator 'for iterator')", function () for _ in nil do end end, "generic for over nil")
  T.err("attempt to call a table value (for iterator 'for iterator')", function () for _ in {} do end end, "generic for over table")
end

T.section "library argument messages"
do
  T.err("bad argument #1 to 'insert' (table expected, got nil)", function () table.insert(nil, 1) end,
        "insert into nil")
  T.err("bad argument #1 to 'ipairs' (value expected)", function () for _ in ipairs() do end end,
        "ipairs without argument")
  T.err("bad argument #1 to 'for iterator' (table expected, got nil)", function () for _ in pairs(nil) do end end,
        "pairs of nil")
  T.err("bad argument #1 to 'setmetatable' (table expected, got nil)", function () setmetatable(nil, {}) end,
        "setmetatable nil")
  T.err("bad argument #1 to 'find' (string expected, got no value)", function () return ("x"):find() end,
        "find without pattern")
  T.err("bad argument #1 to 'abs' (number expected, got string)", function () return math.abs("x") end,
        "abs of non numeric string")
  T.eq(math.abs("-3"), 3.0, "abs of numeric string gives float")
  T.err("bad argument #1 to 'tostring' (value expected)", function () return tostring() end, "tostring no args")
  T.err("bad argument #1 to 'open' (string expected, got table)", function () return io.open({}) end,
        "io.open with table")
  T.err("bad argument #2 to 'open' (invalid mode)", function () return io.open("x", "q") end, "io.open bad mode")
  T.err("bad argument #1 to 'select' (number expected, got string)",
        function () return select("x") end, "select with string index")
  T.err("bad argument #1 to 'date' (invalid conversion specifier '%Ez')", function () return os.date("%Ez") end,
        "os.date invalid conversion")
  T.err("bad argument #1 to 'read' (FILE* expected, got table)",
        function () return io.stdin.read({}) end, "file method with wrong self")
end

T.section "stack overflow"
do
  -- each overflow fills the whole Lua stack, so keep their number small
  local depth = 0
  local function inf(n) depth = depth + 1; return 1 + inf(n + 1) end
  local line = here(); local ok, msg = pcall(inf, 1)
  T.eq(ok, false, "infinite recursion fails")
  T.eq(msg, SRC .. ":" .. (line - 1) .. ": stack overflow", "stack overflow message has position")
  T.ok(depth > 100000, "recursion depth before overflow is large")
  local mt = {}
  mt.__index = function (t, k) return t[k] end
  T.err({pattern = "stack overflow"}, function () return setmetatable({}, mt).x end,
        "infinite __index recursion")
  local names = {}
  for i = 1, 150 do names[i] = "v" .. i end
  -- a function with big frames reaches the stack limit after few calls
  local fat = load("local fat; fat = function () local " .. table.concat(names, ", ") ..
                   "; return 1 + fat() end; return fat", "=fat")()
  T.err("fat:1: stack overflow", fat, "stack overflow with large frames")
  local co = coroutine.wrap(function () return fat() end)
  T.err("fat:1: stack overflow", co, "stack overflow inside coroutine")
  T.ok(pcall(function () return 1 end), "state usable after stack overflow")
  T.eq(select("#", table.unpack({}, 1, 10000)), 10000, "stack grows again after overflow")
end

T.section "assert"
do
  T.eq(assert(1, "unused"), 1, "assert returns first value")
  T.eq(select("#", assert(1, 2, 3)), 3, "assert returns all values")
  T.err("assertion failed!", function () assert(false) end, "assert default message")
  T.err("assertion failed!", function () assert(nil) end, "assert nil default message")
  T.err("custom message", function () assert(false, "custom message") end, "assert custom message")
  local obj = {}
  local _, e = pcall(assert, false, obj)
  T.eq(e, obj, "assert with table message")
  local _, e2 = pcall(assert, nil, 42)
  T.eq(e2, 42, "assert with number message")
  T.err("bad argument #1 to 'assert' (value expected)", function () assert() end, "assert without arguments")
  local ok3, e3 = pcall(assert, false, "no position")
  T.eq(e3, "no position", "assert message gets no position")
end

T.section "tostring"
T.eq(tostring(nil), "nil", "tostring nil")
T.eq(tostring(false), "false", "tostring false")
T.eq(tostring(-7), "-7", "tostring negative integer")
T.eq(tostring("s"), "s", "tostring string")
T.ok(tostring(print):match("^function: 0x%x+$") ~= nil, "tostring of C function")
T.ok(tostring(coroutine.create(print)):match("^thread: ") ~= nil, "tostring thread")
T.ok(tostring(io.stdout):match("^file %(") ~= nil, "tostring open file")
do
  local f = io.tmpfile()
  f:close()
  T.eq(tostring(f), "file (closed)", "tostring closed file")
  T.err("attempt to use a closed file", function () return f:read() end, "read closed file")
end
do
  local f, msg, code = io.open("/nonexistent-dir/x")
  T.eq(f, nil, "io.open failure returns nil")
  T.eq(msg, "/nonexistent-dir/x: No such file or directory", "io.open failure message")
  T.eq(code, 2, "io.open failure errno")
  T.err("bad argument #1 to 'read' (invalid format)", function () return io.stdin:read("x") end,
        "read invalid format")
end

T.section "warn"
do
  warn("@off")
  T.ok(pcall(warn, "ignored while off"), "warn while off")
  T.err("bad argument #1 to 'warn' (string expected, got no value)", function () warn() end, "warn without message")
  T.err("bad argument #2 to 'warn' (string expected, got table)", function () warn("a", {}) end, "warn non string piece")
end

T.done()
