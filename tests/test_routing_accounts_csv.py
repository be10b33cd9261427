"""Reading and writing account routing lists as CSV, without a database: every row's problem
with its row number and column, the whole-file refusals, domains as accounts are matched on,
and downloads that a spreadsheet cannot run as formulas."""

import csv
import io

import pytest

from routing import models
from routing.accounts_csv import (
    MAX_BYTES,
    MAX_ROWS,
    AccountRow,
    DomainInvalid,
    FileRefused,
    RowError,
    company_key,
    normalise_domain,
    read_accounts,
    write_accounts,
)

HEADER = "company,domain,owner_email\n"


def read(text: str, *, bom=False):
    data = text.encode("utf-8")
    return read_accounts(b"\xef\xbb\xbf" + data if bom else data)


@pytest.mark.parametrize(
    ("typed", "domain"),
    [
        ("acme.com", "acme.com"),
        ("  ACME.com  ", "acme.com"),
        ("https://www.Acme.com/about?x=1", "acme.com"),
        ("http://shop.acme.co.uk:8080/", "shop.acme.co.uk"),
        ("www.acme.com", "acme.com"),
        ("acme.com.", "acme.com"),
        ("www.com", "www.com"),  # "www." is dropped only in front of a whole domain
        ("bücher.de", "xn--bcher-kva.de"),
        ("my-company.io", "my-company.io"),
    ],
)
def test_domains_are_cut_down_to_the_host_name(typed, domain):
    assert normalise_domain(typed) == domain


@pytest.mark.parametrize(
    "typed",
    [
        "acme",
        "localhost",
        "ana@acme.com",
        "acme..com",
        "-acme.com",
        "acme-.com",
        "ac me.com",
        "10.0.0.1",
        "acme.com:port",
        "acme.c",
        "https://",
        "x" * 64 + ".com",
        "mailto:ana",
    ],
)
def test_what_is_not_a_host_name_is_refused(typed):
    with pytest.raises(DomainInvalid):
        normalise_domain(typed)


def test_a_good_file_gives_every_row_normalised():
    result = read(
        HEADER
        + "Acme GmbH,https://www.acme.de/,Alex@Example.com\n"
        + ",globex.com,alex@example.com\n"
        + "Initech,,sam@example.com\n"
    )
    assert result.errors == []
    assert result.rows == [
        AccountRow(row=2, company="Acme GmbH", domain="acme.de", owner_email="alex@example.com"),
        AccountRow(row=3, company="", domain="globex.com", owner_email="alex@example.com"),
        AccountRow(row=4, company="Initech", domain="", owner_email="sam@example.com"),
    ]


def test_columns_may_come_in_any_order_and_case_and_others_are_ignored():
    result = read("Owner_Email, Notes ,DOMAIN,Company\nalex@example.com,big fish,acme.com,Acme\n")
    assert result.rows == [
        AccountRow(row=2, company="Acme", domain="acme.com", owner_email="alex@example.com")
    ]


def test_a_byte_order_mark_is_read_past():
    with_bom = read(HEADER + "Acme,acme.com,alex@example.com\n", bom=True)
    without = read(HEADER + "Acme,acme.com,alex@example.com\n")
    assert with_bom == without
    assert len(with_bom.rows) == 1


def test_semicolons_as_some_spreadsheets_save_are_read_too():
    result = read("company;domain;owner_email\nAcme, Inc.;acme.com;alex@example.com\n")
    assert result.rows[0].company == "Acme, Inc."


def test_each_problem_is_reported_with_its_row_and_column():
    result = read(
        HEADER
        + "Acme,acme.com,alex@example.com\n"  # row 2: fine
        + ",,alex@example.com\n"  # row 3: neither name nor domain
        + "Globex,globex,alex@example.com\n"  # row 4: bad domain
        + "Initech,initech.com,\n"  # row 5: no owner
        + "Umbrella,umbrella.com,not-an-email\n"  # row 6: bad email
        + "ACME ,other.com,alex@example.com\n"  # row 7: company again (case, spaces)
        + "Hooli,WWW.ACME.COM,alex@example.com\n"  # row 8: domain again, once normalised
        + "\n"  # row 9: blank, skipped
        + "Soylent,soylent.com,alex@example.com\n"  # row 10: fine
    )
    assert result.errors == [
        RowError(3, "company", "Give a company name, a domain or both."),
        RowError(4, "domain", "“globex” is not a domain name (such as acme.com)."),
        RowError(5, "owner_email", "Give the owner's email."),
        RowError(6, "owner_email", "“not-an-email” is not an email address."),
        RowError(7, "company", "“ACME” is also on row 2."),
        RowError(8, "domain", "acme.com is also on row 2."),
    ]
    assert [row.row for row in result.rows] == [2, 10]


def test_a_row_can_have_several_problems():
    result = read(HEADER + "x" * 256 + ",nope,\n")
    assert result.errors == [
        RowError(2, "company", "Longer than 255 characters."),
        RowError(2, "domain", "“nope” is not a domain name (such as acme.com)."),
        RowError(2, "owner_email", "Give the owner's email."),
    ]
    assert result.rows == []


def test_short_rows_read_as_empty_cells():
    result = read(HEADER + "Acme\n")
    assert result.errors == [RowError(2, "owner_email", "Give the owner's email.")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"  \n\n", "The file is empty."),
        ("company,domain,owner_email\nSoci\xe9t\xe9,x.fr,a@b.fr\n".encode("latin-1"), "UTF-8"),
        (b"name,domain,owner\nAcme,acme.com,a@b.com\n", "missing: company, owner_email."),
        (b"company,domain,owner_email\n", "The file has no accounts below its header row."),
        (b"company,domain,owner_email\n\n\n", "The file has no accounts below its header row."),
    ],
)
def test_files_that_cannot_be_read_are_refused_as_a_whole(data, message):
    with pytest.raises(FileRefused) as refused:
        read_accounts(data)
    assert message in str(refused.value)


def test_a_file_over_the_size_limit_is_refused_before_reading():
    data = HEADER.encode() + b"Acme,acme.com,alex@example.com\n" * (MAX_BYTES // 30)
    assert len(data) > MAX_BYTES
    with pytest.raises(FileRefused, match="larger than 2 MB"):
        read_accounts(data)


def test_a_file_of_up_to_ten_thousand_rows_is_read_and_one_more_is_refused():
    rows = "".join(f"Company {i},c{i}.com,alex@example.com\n" for i in range(MAX_ROWS))
    assert len(read(HEADER + rows).rows) == MAX_ROWS
    with pytest.raises(FileRefused, match="more than 10,000 rows"):
        read(HEADER + rows + "One more,more.com,alex@example.com\n")


def test_the_download_guards_formulas_and_reads_back_the_same():
    written = write_accounts(
        [
            ('=HYPERLINK("http://evil")', "acme.com", "alex@example.com"),
            ("+Plus", "", "sam@example.com"),
            ("-Minus", "minus.com", "sam@example.com"),
            ("@At", "at.com", "sam@example.com"),
            ("Comma, Inc.", "comma.com", "sam@example.com"),
        ]
    )
    assert written.startswith("\ufeffcompany,domain,owner_email\r\n")
    cells = list(csv.reader(io.StringIO(written.removeprefix("\ufeff"))))
    assert [row[0] for row in cells[1:]] == [
        '\'=HYPERLINK("http://evil")',
        "'+Plus",
        "'-Minus",
        "'@At",
        "Comma, Inc.",
    ]
    back = read_accounts(written.encode("utf-8"))
    assert back.errors == []
    assert [row.company for row in back.rows] == [
        '=HYPERLINK("http://evil")',
        "+Plus",
        "-Minus",
        "@At",
        "Comma, Inc.",
    ]


def test_company_names_are_compared_as_the_models_compare_them():
    for name in ["Acme  GmbH", " acme gmbh ", "ÄCME", "", "Straße"]:
        assert company_key(name) == models.company_key(name)
