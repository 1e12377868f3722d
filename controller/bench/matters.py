"""``yimen bench matters``: a district's matter catalogue (seed 003: 525 licensing and 349
public-service matters, 900 rows in all) generated as an xlsx file and imported through the
engine on a temporary SQLite hall — timed from reading the file to committed — then searched
as one types: every prefix of a few names, of their pinyin initials and of a code, as the
desk's search box and ``GET /api/matters?q=`` answer it (the catalogue's search and each
matter's view as JSON)."""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from controller import matters_io
from controller.bench.engine import BENCH, bench_config
from controller.core.commands import SetMatters
from controller.core.matters import Matter, initials
from controller.engine import Engine
from controller.startup import migrate
from controller.storage.db import database_url, open_database
from controller.web.matters_api import find

IMPORT_TARGET_S = 2.0
SEARCH_TARGET_MS = 20.0
_LICENSING = ["食品经营", "食品生产", "药品零售企业经营", "医疗器械经营", "医疗机构执业", "建筑工程施工",
              "排污", "取水", "林木采伐", "道路货物运输经营", "出租汽车经营", "烟草专卖零售", "娱乐场所经营",
              "互联网上网服务营业场所", "民办学校办学", "特种设备使用", "危险化学品经营", "户外广告设施设置",
              "城市道路占用挖掘", "临时建筑建设", "燃气经营", "农作物种子生产经营", "兽药经营", "农药经营",
              "动物防疫条件", "水利工程建设方案", "河道采砂", "人防工程建设", "公共场所卫生", "放射诊疗",
              "母婴保健技术服务", "饮用水供水单位卫生", "旅行社设立", "出版物零售", "雷电防护装置设计"]
_LICENSING_ACTS = ["许可", "许可变更", "许可延续", "许可注销", "许可证补办", "许可（告知承诺）", "许可证换发",
                   "许可（新办）", "许可（迁址）", "许可（扩项）", "许可证遗失补领", "许可证核发", "审批",
                   "审批变更", "审批注销"]
_PUBLIC = ["城乡居民养老保险", "企业职工养老保险", "失业保险", "工伤保险", "城乡居民医疗保险", "职工医疗保险",
           "生育保险", "社会保障卡", "就业创业证", "高校毕业生就业", "职业技能培训补贴", "住房公积金",
           "残疾人证", "最低生活保障", "特困人员救助供养", "临时救助", "老年人优待证", "婚姻登记档案",
           "居住证", "户籍证明", "出生医学证明", "预防接种证", "不动产登记资料", "纳税证明", "发票",
           "个人所得税", "退役军人优待证", "法律援助", "公证", "档案查询", "水电气报装", "有线电视",
           "公交卡", "学籍证明", "计划生育奖励扶助"]
_PUBLIC_ACTS = ["参保登记", "申领", "变更", "查询", "补办", "转移接续", "待遇申领", "注销", "证明开具",
                "信息修改"]
_DEPARTMENTS = ["区市场监督管理局", "区卫生健康局", "区住房和城乡建设局", "区交通运输局", "区农业农村局",
                "区水利局", "区文化和旅游局", "区应急管理局", "区人力资源和社会保障局", "区医疗保障局",
                "区民政局", "区公安分局", "国家税务总局某区税务局", "区自然资源局", "区教育局"]
_MATERIALS = ["申请书", "申请人有效身份证件", "营业执照", "经营场所使用证明", "法定代表人身份证明",
              "授权委托书及受托人身份证件", "相关资质证明", "平面布局图", "管理制度文件", "承诺书"]


def catalogue(seed: int = 3) -> list[Matter]:
    """900 matters: 525 licensing, 349 public service and 26 others, across departments,
    services A–E and twelve windows, every handling form."""
    rnd = random.Random(seed)
    out: list[Matter] = []

    def add(name: str, category: str) -> None:
        n = len(out) + 1
        form = rnd.choices(["instant", "promised", "joint", "upper"], [30, 60, 7, 3])[0]
        promised = 0 if form == "instant" else rnd.choice([1, 3, 5, 7, 10, 15, 20])
        service = "ABCDE"[n % 5]
        out.append(Matter(
            code=f"330102-{category[:3].upper()}-{n:04d}", name=name, category=category,  # type: ignore[arg-type]
            department=_DEPARTMENTS[n % len(_DEPARTMENTS)], form=form,  # type: ignore[arg-type]
            statutory_days=max(promised, rnd.choice([0, 15, 20, 30])) if form != "instant" else 20,
            promised_days=promised, fees=rnd.choice(["不收费", "不收费", "工本费10元/本"]),
            materials=tuple(rnd.sample(_MATERIALS, rnd.randint(2, 6))), service=service,
            windows=(str(1 + n % 12),),
            partners=("区消防救援大队", "区生态环境分局") if form == "joint" else ()))

    for obj in _LICENSING:
        for act in _LICENSING_ACTS:
            add(f"{obj}{act}", "licensing")
    for obj in _PUBLIC:
        for act in _PUBLIC_ACTS:
            if len(out) < 525 + 349:
                add(f"{obj}{act}", "public_service")
    for i in range(900 - len(out)):
        if i % 2:
            add(f"{_PUBLIC[i]}相关事项（其他）", "other")
        else:
            add(f"{_LICENSING[i]}备案", "approval")
    return out


def _pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 else values[0]


def _queries() -> list[str]:
    """What a clerk types, one keystroke at a time: names, pinyin initials, a code."""
    words = ["食品经营许可", "城乡居民养老保险参保登记", "道路货物运输经营许可", "社会保障卡申领"]
    typed = [w[:i] for w in words for i in range(1, len(w) + 1)]
    typed += [initials(w)[:i] for w in words for i in range(1, len(initials(w)) + 1)]
    typed += ["330102-LIC-0123"[:i] for i in range(1, 16)]
    return typed


async def run(repeats: int = 20) -> dict[str, Any]:
    matters = catalogue()
    with tempfile.TemporaryDirectory(prefix="yimen-bench-matters-") as tmp:
        path = Path(tmp) / "district-matters.xlsx"
        path.write_bytes(matters_io.to_xlsx(matters))
        db = open_database(database_url(None, tmp))
        try:
            await migrate(db)
            engine = Engine(bench_config(windows=12), db)
            await engine.start()
            try:
                t0 = time.perf_counter()
                data = path.read_bytes()
                sheet = matters_io.read(path.name, data)
                t1 = time.perf_counter()
                loaded = matters_io.check(sheet).matters
                t2 = time.perf_counter()
                reply = await engine.execute(SetMatters(matters=[m.model_dump(mode="json") for m in loaded]),
                                             BENCH)
                t3 = time.perf_counter()
                cat = (await engine.settled()).catalogue
                queries = _queries()
                times: list[float] = []
                hits = {}
                for _ in range(repeats):
                    for q in queries:
                        s = time.perf_counter()
                        found = find(cat, q, 20, None, False)
                        json.dumps([m.view() for m in found], ensure_ascii=False)
                        times.append((time.perf_counter() - s) * 1000)
                        hits[q] = len(found)
            finally:
                await engine.stop()
        finally:
            await db.dispose()
    return {"rows": len(matters), "bytes": len(data), "read_s": t1 - t0, "check_s": t2 - t1,
            "commit_s": t3 - t2, "total_s": t3 - t0, "reply": reply,
            "categories": {c: sum(m.category == c for m in loaded) for c in
                           ("licensing", "public_service", "approval", "other")},
            "queries": len(queries), "searches": len(times), "p50": _pct(times, 50),
            "p99": _pct(times, 99), "max": max(times), "misses": [q for q, n in hits.items() if not n]}


def report(out: dict[str, Any]) -> str:
    ok = lambda good: "ok" if good else "MISSED"  # noqa: E731
    c = out["categories"]
    return "\n".join([
        f"catalogue of {out['rows']} matters ({c['licensing']} licensing, {c['public_service']} public "
        f"service, {c['approval'] + c['other']} other) as xlsx, {out['bytes'] / 1024:.0f} KiB:",
        f"  import: read {out['read_s'] * 1000:.0f} ms + checked {out['check_s'] * 1000:.0f} ms + "
        f"through the engine, committed {out['commit_s'] * 1000:.0f} ms = {out['total_s']:.2f} s "
        f"(target < {IMPORT_TARGET_S:.0f} s: {ok(out['total_s'] < IMPORT_TARGET_S)}); "
        f"added {out['reply']['added']}",
        f"  search as you type: {out['queries']} prefixes × {out['searches'] // out['queries']} = "
        f"{out['searches']} searches (20 best, as JSON): p50 {out['p50']:.2f} ms, p99 {out['p99']:.2f} ms, "
        f"max {out['max']:.2f} ms (target < {SEARCH_TARGET_MS:.0f} ms: {ok(out['max'] < SEARCH_TARGET_MS)})"
        + (f"; no match for {', '.join(out['misses'])}" if out["misses"] else ""),
    ])


def main(repeats: int = 20) -> dict[str, Any]:
    return asyncio.run(run(repeats))
