import { defineStoreCompliance } from '../helpers/store-compliance'
import { createMapStore } from '../helpers/map-store'

defineStoreCompliance('js-map', () => createMapStore(), { isolated: true })
