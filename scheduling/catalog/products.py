"""The drug catalog and the infusion-time calculator. Flushes; never commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core import settle
from core.pagination import page
from core.problems import Duplicate, Invalid
from core.repository import get_or_404
from scheduling.catalog.models import Product
from scheduling.catalog.schemas import InfusionTimeIn, ProductCreate, ProductUpdate
from scheduling.catalog.titration import (
    ChairTime,
    InfusionPlan,
    Titration,
    ceiling_rate,
    chair_time,
    infusion_plan,
)
from scheduling.centers import repository as center_repository


def titration_of(product: Product) -> Titration:
    return Titration(
        initial_rate=float(product.initial_rate),
        step=float(product.rate_step),
        step_minutes=product.step_interval_minutes,
        max_rate=float(product.max_rate),
    )


def minimum_rate(product: Product) -> float:
    """The slowest practicable rate, for patients with renal or thrombosis risk."""
    floor = product.min_practicable_rate
    return float(floor if floor is not None else product.initial_rate)


async def get_product(session: AsyncSession, product_id: uuid.UUID) -> Product:
    return await get_or_404(session, Product, product_id, "product")


async def list_products(
    session: AsyncSession, limit: int, cursor: str | None
) -> tuple[list[Product], str | None]:
    return await page(session, select(Product), [Product.name, Product.id], limit, cursor)


def _columns(data: ProductCreate | ProductUpdate) -> dict[str, object]:
    # A create takes every field, defaults included; an update only what the caller sent.
    partial = isinstance(data, ProductUpdate)
    values = data.model_dump(exclude_unset=partial, exclude={"titration"})
    renames = {
        "max_rate_mg_per_kg_min": "max_rate",
        "min_practicable_rate_mg_per_kg_min": "min_practicable_rate",
    }
    columns = {renames.get(k, k): v for k, v in values.items()}
    if data.titration is not None:
        columns["initial_rate"] = data.titration.initial_rate_mg_per_kg_min
        columns["rate_step"] = data.titration.step_mg_per_kg_min
        columns["step_interval_minutes"] = data.titration.step_interval_minutes
    return columns


async def _flush_unique(session: AsyncSession, name: str) -> None:
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        if "name" not in str(exc.orig):
            raise
        raise Duplicate("name: a product of that name already exists") from exc


# Fields an update may clear by sending null.
NULLABLE = (
    "min_practicable_rate",
    "price_per_unit",
    "usual_dose_min_g_per_kg",
    "usual_dose_max_g_per_kg",
    "refrigerated_shelf_months",
    "room_temperature_months",
    "order_lead_days",
)


def _check_usual_dose(low: Decimal | None, high: Decimal | None) -> None:
    if low is not None and high is not None and low > high:
        raise Invalid("the usual dose range runs from its minimum up to its maximum")


async def create_product(session: AsyncSession, data: ProductCreate) -> Product:
    _check_usual_dose(data.usual_dose_min_g_per_kg, data.usual_dose_max_g_per_kg)
    product = Product(id=uuid.uuid4(), **_columns(data))
    session.add(product)
    await _flush_unique(session, data.name)
    return product


@settle.use_case
async def update_product(session: AsyncSession, product: Product, data: ProductUpdate) -> Product:
    """Changes apply to sessions planned from now on; booked sessions keep their figures."""
    for name, value in _columns(data).items():
        if value is not None or name in NULLABLE:
            setattr(product, name, value)
    if product.initial_rate > product.max_rate or (
        product.min_practicable_rate is not None and product.min_practicable_rate > product.max_rate
    ):
        raise Invalid("the initial and minimum rates cannot exceed the maximum rate")
    _check_usual_dose(product.usual_dose_min_g_per_kg, product.usual_dose_max_g_per_kg)
    await _flush_unique(session, product.name)
    # Price and billing unit change money at risk and billing units: the next sweep
    # recomputes the patients treated with it.
    settle.mark(session, settle.PRODUCT_CHANGED, product.id)
    return product


@dataclass(frozen=True)
class InfusionTime:
    dose_g: float
    plan: InfusionPlan
    chair: ChairTime


async def infusion_time(session: AsyncSession, data: InfusionTimeIn) -> InfusionTime:
    product = await get_product(session, data.product_id)
    turnover = 0
    if data.center_id is not None:
        turnover = (await center_repository.get_center(session, data.center_id)).turnover_minutes
    weight = float(data.weight_kg)
    dose_g = float(data.dose_g if data.dose_g is not None else (data.dose_g_per_kg or Decimal(0)))
    if data.dose_g is None:
        dose_g *= weight
    titration = titration_of(product)
    caps = (
        float(data.max_rate_mg_per_kg_min) if data.max_rate_mg_per_kg_min else None,
        minimum_rate(product) if data.risk_flags else None,
    )
    plan = infusion_plan(dose_g * 1000 / weight, titration, ceiling_rate(titration, caps))
    chair = chair_time(
        plan.minutes,
        premed=product.premed_minutes,
        observation=product.observation_minutes,
        first_dose_extra=product.first_dose_extra_observation_minutes,
        first_dose=data.first_dose,
        turnover=turnover,
    )
    return InfusionTime(round(dose_g, 2), plan, chair)
