-- VLC interface script loaded by vlc-check.py (`cvlc -I luaintf --lua-intf hlsgate_report`).
-- Reports every change of VLC's `time` (µs) while the input plays, the stream info once playing,
-- and, once the input is gone, the item's final statistics; then quits VLC.
-- With HLSGATE_VLC_SEEK=µs: at the first time update it seeks there ("event=seek"), reports the
-- time updates that follow, and quits after HLSGATE_VLC_AFTER (default 4) of them.
-- One line per report on stdout: "HLSGATE_VLC event=… key=value …".
local function out(s)
  io.stdout:write("HLSGATE_VLC " .. s .. "\n")
  io.stdout:flush()
end
local function sleep_us(us) vlc.misc.mwait(vlc.misc.mdate() + us) end
local function clean(v) return (string.gsub(tostring(v), "%s", "_")) end

local seek_to = tonumber(os.getenv("HLSGATE_VLC_SEEK") or "")
local after_max = tonumber(os.getenv("HLSGATE_VLC_AFTER") or "4")
local input, item = nil, nil
local deadline = vlc.misc.mdate() + 30000000
while input == nil do
  input = vlc.object.input()
  if vlc.misc.mdate() > deadline then out("event=no-input"); vlc.misc.quit(); return end
  sleep_us(10000)
end
item = vlc.input.item()
local last, info_done, seeked, after = nil, false, false, 0
-- The item's statistics, sampled while the input lives: once the input is gone VLC has been seen
-- to return an empty table (CI, under load), so the last non-empty sample stands in for it.
local sampled = {}
local function sample_stats()
  local ok, st = pcall(function() return item and item:stats() or {} end)
  if ok and st ~= nil and next(st) ~= nil then sampled = st end
end
local function report_info()
  for cat, fields in pairs(item and item:info() or {}) do
    if string.find(cat, "^Stream") then
      local kv = {}
      for k, v in pairs(fields) do kv[#kv + 1] = clean(k) .. "=" .. clean(v) end
      out("event=info " .. table.concat(kv, " "))
      info_done = true
    end
  end
end
while vlc.object.input() ~= nil do
  local ok, t = pcall(vlc.var.get, input, "time")
  if ok and t ~= nil and t ~= last then
    out(string.format("event=time t=%d", t))
    if last ~= nil and not info_done then report_info() end
    if seeked then
      after = after + 1
      if after >= after_max then break end
    elseif seek_to ~= nil and last ~= nil and t > 0 then
      out(string.format("event=seek from=%d to=%d", t, seek_to))
      vlc.var.set(input, "time", seek_to)
      seeked = true
      t = nil
    end
    last = t
  end
  sample_stats()
  sleep_us(10000)
end
if not info_done then report_info() end
sample_stats()
local st = sampled
local parts = {}
for k, v in pairs(st) do parts[#parts + 1] = k .. "=" .. tostring(v) end
-- One write for both lines: with --play-and-exit VLC may exit between two writes (the stats
-- were seen without the end line once).
out("event=stats " .. table.concat(parts, " ") .. "\nHLSGATE_VLC event=end")
vlc.misc.quit()
