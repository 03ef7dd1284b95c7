"""A minimal Office Open XML workbook writer (.xlsx, ECMA-376): enough for
reports, without a dependency. Each sheet is a list of rows; a cell is an int
(written as a number) or anything else (written as an inline string). The
package holds the five parts a spreadsheet application needs: content types,
the package relationship, the workbook, its relationships and the sheets.
read_sheets() reads such a file back (tests, and a quick look in a shell)."""
import io
import re
import zipfile
from xml.sax.saxutils import escape

_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT = "http://schemas.openxmlformats.org/package/2006/content-types"
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_BAD_NAME = re.compile(r"[\[\]\*\?/\\:]")
# XML 1.0 has no place for most control characters: drop them from text
_CTRL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _col(i):
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def _cell(ref, v):
    if isinstance(v, bool) or not isinstance(v, int):
        t = escape(_CTRL.sub("", "" if v is None else str(v)))
        return '<c r="%s" t="inlineStr"><is><t xml:space="preserve">%s</t></is></c>' % (ref, t)
    return '<c r="%s"><v>%d</v></c>' % (ref, v)


def _sheet(rows):
    out = [_XML, '<worksheet xmlns="%s"><sheetData>' % _NS]
    for r, row in enumerate(rows):
        out.append('<row r="%d">' % (r + 1))
        out.extend(_cell("%s%d" % (_col(c), r + 1), v) for c, v in enumerate(row))
        out.append("</row>")
    out.append("</sheetData></worksheet>")
    return "".join(out)


def write(out, sheets):
    """sheets: [(name, rows)] -> the .xlsx bytes written to the binary file `out`."""
    if not sheets:
        raise ValueError("a workbook needs a sheet")
    names = []
    for name, _rows in sheets:
        n = _BAD_NAME.sub("_", str(name))[:31] or "Sheet"
        if n in names:
            raise ValueError("sheet name %r twice" % n)
        names.append(n)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _XML + (
            '<Types xmlns="%s"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.sheet.main+xml"/>' % _CT) + "".join(
            '<Override PartName="/xl/worksheets/sheet%d.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.worksheet+xml"/>' % (i + 1) for i in range(len(sheets))) + "</Types>")
        z.writestr("_rels/.rels", _XML + '<Relationships xmlns="%s"><Relationship Id="rId1" Type="%s/officeDocument"'
                   ' Target="xl/workbook.xml"/></Relationships>' % (_PKG, _R))
        z.writestr("xl/workbook.xml", _XML + '<workbook xmlns="%s" xmlns:r="%s"><sheets>' % (_NS, _R) + "".join(
            '<sheet name="%s" sheetId="%d" r:id="rId%d"/>' % (escape(n, {'"': "&quot;"}), i + 1, i + 1)
            for i, n in enumerate(names)) + "</sheets></workbook>")
        z.writestr("xl/_rels/workbook.xml.rels", _XML + '<Relationships xmlns="%s">' % _PKG + "".join(
            '<Relationship Id="rId%d" Type="%s/worksheet" Target="worksheets/sheet%d.xml"/>' % (i + 1, _R, i + 1)
            for i in range(len(sheets))) + "</Relationships>")
        for i, (_name, rows) in enumerate(sheets):
            z.writestr("xl/worksheets/sheet%d.xml" % (i + 1), _sheet(rows))
    out.write(buf.getvalue())


def read_sheets(data):
    """The sheets of a workbook written by write(): {name: [[value, ...], ...]}."""
    import xml.etree.ElementTree as ET

    ns = {"m": _NS}
    z = zipfile.ZipFile(io.BytesIO(data))
    wb = ET.fromstring(z.read("xl/workbook.xml"))
    out = {}
    for i, sh in enumerate(wb.find("m:sheets", ns)):
        root = ET.fromstring(z.read("xl/worksheets/sheet%d.xml" % (i + 1)))
        rows = []
        for row in root.find("m:sheetData", ns):
            vals = []
            for c in row:
                if c.get("t") == "inlineStr":
                    vals.append(c.find("m:is/m:t", ns).text or "")
                else:
                    vals.append(int(c.find("m:v", ns).text))
            rows.append(vals)
        out[sh.get("name")] = rows
    return out
