"""The drug catalog and the infusion-time calculator."""

from __future__ import annotations

import uuid
from decimal import Decimal

from fastapi import APIRouter, Response, status

from app.api.deps import (
    DEFAULT_PAGE,
    Allowed,
    Cursor,
    IfMatch,
    Limit,
    Session,
    etag,
)
from core.problems import ensure_version
from core.schemas import Page
from scheduling.catalog import products
from scheduling.catalog.models import Product
from scheduling.catalog.schemas import (
    ChairBreakdown,
    InfusionTimeIn,
    InfusionTimeOut,
    ProductCreate,
    ProductOut,
    ProductUpdate,
    RateStepOut,
    TitrationOut,
)

router = APIRouter(prefix="/api/v1", tags=["catalog"])


def _number(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def product_out(p: Product) -> ProductOut:
    return ProductOut(
        id=p.id,
        name=p.name,
        hcpcs_code=p.hcpcs_code,
        billing_unit_mg=p.billing_unit_mg,
        concentration_pct=float(p.concentration_pct),
        titration=TitrationOut(
            initial_rate_mg_per_kg_min=float(p.initial_rate),
            step_mg_per_kg_min=float(p.rate_step),
            step_interval_minutes=p.step_interval_minutes,
        ),
        max_rate_mg_per_kg_min=float(p.max_rate),
        min_practicable_rate_mg_per_kg_min=(
            float(p.min_practicable_rate) if p.min_practicable_rate is not None else None
        ),
        premed_minutes=p.premed_minutes,
        observation_minutes=p.observation_minutes,
        first_dose_extra_observation_minutes=p.first_dose_extra_observation_minutes,
        vial_sizes_g=[float(v) for v in p.vial_sizes_g],
        price_per_unit=float(p.price_per_unit) if p.price_per_unit is not None else None,
        usual_dose_min_g_per_kg=_number(p.usual_dose_min_g_per_kg),
        usual_dose_max_g_per_kg=_number(p.usual_dose_max_g_per_kg),
        refrigerated_shelf_months=p.refrigerated_shelf_months,
        room_temperature_months=p.room_temperature_months,
        preparation_minutes=p.preparation_minutes,
        order_lead_days=p.order_lead_days,
        active=p.active,
        version=p.version,
    )


@router.get("/products", response_model=Page[ProductOut])
async def list_products(
    session: Session, _: Allowed, limit: Limit = DEFAULT_PAGE, cursor: Cursor = None
) -> Page[ProductOut]:
    """The drug catalog, a page at a time."""
    items, nxt = await products.list_products(session, limit, cursor)
    return Page[ProductOut](items=[product_out(p) for p in items], next_cursor=nxt)


@router.post("/products", status_code=status.HTTP_201_CREATED, response_model=ProductOut)
async def create_product(
    data: ProductCreate, session: Session, _: Allowed, response: Response
) -> ProductOut:
    """Add a drug to the catalog (its vials, dosing and infusion rules). Answers 201
    with its Location and ETag."""
    product = await products.create_product(session, data)
    response.headers["Location"] = f"/api/v1/products/{product.id}"
    response.headers["ETag"] = etag(product.version)
    return product_out(product)


@router.get("/products/{product_id}", response_model=ProductOut)
async def get_product(
    product_id: uuid.UUID, session: Session, _: Allowed, response: Response
) -> ProductOut:
    """One drug of the catalog, with its ETag for a later change."""
    product = await products.get_product(session, product_id)
    response.headers["ETag"] = etag(product.version)
    return product_out(product)


@router.patch("/products/{product_id}", response_model=ProductOut)
async def update_product(
    product_id: uuid.UUID,
    data: ProductUpdate,
    version: IfMatch,
    session: Session,
    _: Allowed,
    response: Response,
) -> ProductOut:
    """Change a drug of the catalog. Send If-Match with the ETag you read: 428 without one,
    412 when it is stale."""
    product = await products.get_product(session, product_id)
    ensure_version(product.version, version, "product")
    product = await products.update_product(session, product, data)
    response.headers["ETag"] = etag(product.version)
    return product_out(product)


@router.post("/infusion-time", response_model=InfusionTimeOut)
async def infusion_time(data: InfusionTimeIn, session: Session, _: Allowed) -> InfusionTimeOut:
    """Dose, infusion and chair time for one session, with the rate steps and the breakdown,
    so a nurse can see why a session is long."""
    result = await products.infusion_time(session, data)
    chair = result.chair
    return InfusionTimeOut(
        dose_g=result.dose_g,
        infusion_minutes=chair.infusion,
        chair_minutes=chair.total,
        rate_ceiling_mg_per_kg_min=result.plan.ceiling,
        steps=[
            RateStepOut(minute=s.minute, rate_mg_per_kg_min=round(s.rate, 4))
            for s in result.plan.steps
        ],
        breakdown=ChairBreakdown(
            premed=chair.premed,
            infusion=chair.infusion,
            observation=chair.observation,
            turnover=chair.turnover,
        ),
    )
