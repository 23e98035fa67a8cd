"""Tiny export files for the Dagster and CLI tests: a handful of rows, exact known counts."""

import csv
from collections.abc import Iterable
from pathlib import Path

from quimbi_pipeline.core.schema import SHOPIFY_COLUMNS, TICKET_COLUMNS


def order_row(order_id: str, customer_id: str, date: str, sales: str = "10.00", **extra: str):
    """One Shopify-layout row; other columns default to a plain one-mug line."""
    row = {
        "OrderID": order_id, "Customer_ID": customer_id, "Date": date, "Sku": "SKU-1",
        "ProductId": "P1", "Title": "Mug", "ProductType": "Home", "Category": "Kitchen",
        "QTY": "1", "Sales": sales, "TotalDiscount": "0", "Refunds": "0", "Source": "web",
    }  # fmt: skip
    row.update(extra)
    return [row[column] for column in SHOPIFY_COLUMNS]


def write_csv(path: Path, header: Iterable[str], rows: Iterable[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(list(header))
        writer.writerows(rows)
    return path


def write_orders(path: Path, rows: Iterable[list[str]]) -> Path:
    return write_csv(path, SHOPIFY_COLUMNS, rows)


def write_tickets(path: Path, rows: Iterable[list[str]]) -> Path:
    return write_csv(path, TICKET_COLUMNS, rows)


def ticket_row(ticket_id: str, customer_id: str, created_at: str) -> list[str]:
    return [ticket_id, customer_id, created_at, "email", "shipping", "3", "4.5", "4"]
