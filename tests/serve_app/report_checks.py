"""Looking at a report as a person would: poppler's pdftotext, pdfinfo, pdfimages and pdftoppm
(poppler-utils) on the downloaded file."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from tests.serve_app.test_api_platform import V1


def generate(api, user: str, body: dict, timeout: float = 240) -> tuple[dict, bytes]:
    resp = api.http.post(f"{V1}/reports/generate", json=body, headers=api.headers(user))
    assert resp.status_code == 202, resp.text
    started = resp.json()
    assert started["success"] is True and started["report_id"].startswith("rpt_") and started["poll_url"]
    job = api.wait_job(started["job_id"], user, timeout=timeout)
    assert job["status"] == "completed", job
    got = api.http.get(f"{V1}/reports/{started['report_id']}", headers=api.headers(user))
    assert got.status_code == 200, got.text
    report = got.json()["data"]
    assert report["status"] == "completed" and report["download_url"] == f"/api/v1/reports/{report['report_id']}/download"
    file = api.http.get(report["download_url"], headers=api.headers(user))
    assert file.status_code == 200, file.text
    assert hashlib.sha256(file.content).hexdigest() == report["sha256"] and len(file.content) == report["size"]
    return report, file.content


def pdf_text(pdf: bytes, tmp: Path) -> str:
    path = tmp / "report.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout


def pdf_pages(pdf: bytes, tmp: Path) -> int:
    path = tmp / "report.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))


def non_blank(img: Image.Image) -> bool:
    pixels = np.asarray(img.convert("RGB"))
    return (pixels.min(axis=2) < 200).mean() > 0.01 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20


def pdf_images(pdf: bytes, tmp: Path) -> list[Image.Image]:
    """Every image embedded in the PDF (pdfimages -png), with its resolution checked >= 150 dpi."""
    path = tmp / "report.pdf"
    path.write_bytes(pdf)
    listing = subprocess.run(["pdfimages", "-list", str(path)], check=True, capture_output=True, text=True).stdout
    for line in listing.splitlines()[2:]:
        cols = line.split()
        assert int(cols[12]) >= 140 and int(cols[13]) >= 140, line  # x-ppi, y-ppi
    out = tmp / "img"
    out.mkdir(exist_ok=True)
    subprocess.run(["pdfimages", "-png", str(path), str(out / "i")], check=True)
    return [Image.open(p) for p in sorted(out.glob("i-*.png"))]


def render_pages(pdf: bytes, tmp: Path, dpi: int = 60) -> list[Path]:
    path = tmp / "report.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", str(dpi), str(path), str(tmp / "page")], check=True)
    return sorted(tmp.glob("page-*.png"))


MONEY = r"(\$-?[\d,]+\.\d{2}|n/a)"


def money_after(text: str, label: str) -> float | None:
    """The dollar figure printed after ``label`` on its line (None for n/a)."""
    m = re.search(re.escape(label) + r"\s+" + MONEY, text)
    assert m, f"{label!r} not found in the report text"
    return None if m.group(1) == "n/a" else float(m.group(1).replace("$", "").replace(",", ""))


def number_after(text: str, label: str) -> float | None:
    m = re.search(re.escape(label) + r"\s+(-?[\d,]+\.\d+|n/a)", text)
    assert m, f"{label!r} not found in the report text"
    return None if m.group(1) == "n/a" else float(m.group(1).replace(",", ""))
