"""Every GraphQL document the Shopify client sends (Admin API 2025-01).

They live here, as constants, so that one test can validate each of them against the
official schema file (contracts/shopify/admin_schema_2025-01.json.gz): a field Shopify
does not have, or an argument of the wrong type, fails that test before it fails a shop.
"""

from __future__ import annotations

PRODUCT_FIELDS = """
fragment ProductFields on Product {
  id
  legacyResourceId
  title
  handle
  status
  descriptionHtml
  vendor
  productType
  tags
  createdAt
  updatedAt
  onlineStoreUrl
  seo { title description }
  media(first: 10) {
    nodes {
      ... on MediaImage { id alt image { url altText } }
    }
  }
  variants(first: 2) {
    nodes {
      id
      sku
      price
      compareAtPrice
      inventoryQuantity
      inventoryItem {
        id
        tracked
        inventoryLevel(locationId: $locationId) {
          quantities(names: ["available"]) { name quantity }
        }
      }
    }
  }
}
"""

ORDER_FIELDS = """
fragment OrderFields on Order {
  id
  legacyResourceId
  name
  createdAt
  updatedAt
  processedAt
  cancelledAt
  displayFinancialStatus
  currencyCode
  email
  customer { displayName email }
  shippingAddress { name address1 address2 city provinceCode zip countryCodeV2 }
  subtotalPriceSet { shopMoney { amount currencyCode } }
  totalShippingPriceSet { shopMoney { amount currencyCode } }
  totalTaxSet { shopMoney { amount currencyCode } }
  totalPriceSet { shopMoney { amount currencyCode } }
  lineItems(first: 10) {
    pageInfo { hasNextPage endCursor }
    nodes { ...LineFields }
  }
}
"""

LINE_FIELDS = """
fragment LineFields on LineItem {
  id
  sku
  title
  quantity
  currentQuantity
  originalUnitPriceSet { shopMoney { amount currencyCode } }
  product { id }
  variant { id }
}
"""

USER_ERRORS = "userErrors { field message }"
CODED_USER_ERRORS = "userErrors { field message code }"

SHOP_CHECK = """
query ShopCheck($locationId: ID!, $withLocation: Boolean!) {
  shop { name myshopifyDomain currencyCode }
  location(id: $locationId) @include(if: $withLocation) { id name isActive }
  locations(first: 10) { nodes { id name isActive } }
}
"""

VARIANTS_BY_SKU = """
query VariantsBySku($query: String!) {
  productVariants(first: 5, query: $query) {
    nodes { id sku product { id status } }
  }
}
"""

PRODUCT = (
    """
query Product($id: ID!, $locationId: ID!) {
  product(id: $id) { ...ProductFields }
}
"""
    + PRODUCT_FIELDS
)

PRODUCTS_PAGE = (
    """
query ProductsPage($first: Int!, $after: String, $query: String, $locationId: ID!) {
  products(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { ...ProductFields }
  }
}
"""
    + PRODUCT_FIELDS
)

ORDERS_PAGE = (
    """
query OrdersPage($first: Int!, $after: String, $query: String!) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { ...OrderFields }
  }
}
"""
    + ORDER_FIELDS
    + LINE_FIELDS
)

# The first page of a pull: orders and products changed since the watermark in one request,
# so a pull that finds nothing costs one call.
CHANGES = (
    """
query Changes($first: Int!, $ordersQuery: String!, $productsQuery: String, $locationId: ID!) {
  orders(first: $first, query: $ordersQuery, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { ...OrderFields }
  }
  products(first: $first, query: $productsQuery, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { ...ProductFields }
  }
}
"""
    + ORDER_FIELDS
    + LINE_FIELDS
    + PRODUCT_FIELDS
)

ORDER = (
    """
query Order($id: ID!) {
  order(id: $id) { ...OrderFields }
}
"""
    + ORDER_FIELDS
    + LINE_FIELDS
)

# An order's lines past the first page (a dealer's order rarely has more than 10).
ORDER_LINES = (
    """
query OrderLines($id: ID!, $after: String) {
  order(id: $id) {
    lineItems(first: 50, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { ...LineFields }
    }
  }
}
"""
    + LINE_FIELDS
)

PRODUCT_SET = (
    """
mutation ProductSet($input: ProductSetInput!, $synchronous: Boolean!, $locationId: ID!) {
  productSet(input: $input, synchronous: $synchronous) {
    product { ...ProductFields }
    """
    + CODED_USER_ERRORS
    + """
  }
}
"""
    + PRODUCT_FIELDS
)

PRODUCT_UPDATE = (
    """
mutation ProductUpdate($product: ProductUpdateInput!, $locationId: ID!) {
  productUpdate(product: $product) {
    product { ...ProductFields }
    """
    + USER_ERRORS
    + """
  }
}
"""
    + PRODUCT_FIELDS
)

VARIANTS_BULK_UPDATE = """
mutation VariantsBulkUpdate($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {
  productVariantsBulkUpdate(productId: $productId, variants: $variants) {
    productVariants { id sku price compareAtPrice }
    userErrors { field message code }
  }
}
"""

INVENTORY_SET = """
mutation InventorySet($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) {
    inventoryAdjustmentGroup { reason changes { name delta quantityAfterChange } }
    userErrors { field message code }
  }
}
"""

WEBHOOK_SUBSCRIPTIONS = """
query WebhookSubscriptions($first: Int!) {
  webhookSubscriptions(first: $first) {
    nodes {
      id
      topic
      format
      endpoint { __typename ... on WebhookHttpEndpoint { callbackUrl } }
    }
  }
}
"""

WEBHOOK_SUBSCRIPTION_CREATE = """
mutation WebhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, $webhookSubscription: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) {
    webhookSubscription { id topic }
    userErrors { field message }
  }
}
"""

WEBHOOK_SUBSCRIPTION_UPDATE = """
mutation WebhookSubscriptionUpdate($id: ID!, $webhookSubscription: WebhookSubscriptionInput!) {
  webhookSubscriptionUpdate(id: $id, webhookSubscription: $webhookSubscription) {
    webhookSubscription { id topic }
    userErrors { field message }
  }
}
"""

# Every document, by operation name: the client sends nothing that is not listed here.
DOCUMENTS: dict[str, str] = {
    "ShopCheck": SHOP_CHECK,
    "VariantsBySku": VARIANTS_BY_SKU,
    "Product": PRODUCT,
    "ProductsPage": PRODUCTS_PAGE,
    "OrdersPage": ORDERS_PAGE,
    "Changes": CHANGES,
    "Order": ORDER,
    "OrderLines": ORDER_LINES,
    "ProductSet": PRODUCT_SET,
    "ProductUpdate": PRODUCT_UPDATE,
    "VariantsBulkUpdate": VARIANTS_BULK_UPDATE,
    "InventorySet": INVENTORY_SET,
    "WebhookSubscriptions": WEBHOOK_SUBSCRIPTIONS,
    "WebhookSubscriptionCreate": WEBHOOK_SUBSCRIPTION_CREATE,
    "WebhookSubscriptionUpdate": WEBHOOK_SUBSCRIPTION_UPDATE,
}
